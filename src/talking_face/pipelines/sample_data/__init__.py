"""`sample_data`: the project's own corpus of talking-face clips and a contact sheet of them."""

from talking_face.pipelines.sample_data.pipeline import create_pipeline

__all__ = ["create_pipeline"]
