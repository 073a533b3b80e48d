"""`train`: the end-to-end chain users run, `kedro run --pipeline=train`."""

from talking_face.pipelines.train.pipeline import create_pipeline

__all__ = ["create_pipeline"]
