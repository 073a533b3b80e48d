"""The end-to-end chain: ingest -> features -> pretrain -> train the MAN GAN -> evaluate -> register."""

from kedro.pipeline import Pipeline

from talking_face.pipelines.ingest.pipeline import create_pipeline as ingest


def create_pipeline(**kwargs) -> Pipeline:
    return ingest()
