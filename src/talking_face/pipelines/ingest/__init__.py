"""`ingest`: raw clips -> probed, validated, speaker-split manifest plus the rejected clips and their reasons."""

from talking_face.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
