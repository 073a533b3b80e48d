"""`register`: the model as an MLflow pyfunc version, tagged with its metrics; `champion` only if it earns it."""

from talking_face.pipelines.register.pipeline import create_pipeline

__all__ = ["create_pipeline"]
