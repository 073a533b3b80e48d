"""The `generate` pipeline: talking-face videos in batch from a CSV of (image, audio, output) rows."""

from talking_face.pipelines.generate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
