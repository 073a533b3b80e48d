"""The `features` pipeline: manifest clips -> per-clip feature files, a validated summary and panels."""

from talking_face.pipelines.features.pipeline import create_pipeline

__all__ = ["create_pipeline"]
