"""`evaluate`: every test clip generated as a user would, scored with the paper's metrics beside the baseline."""

from talking_face.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
