"""Pipelines by name: one folder per pipeline under `pipelines/`, each with `create_pipeline()`."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines()
    # The default run is the end-to-end chain users run as `kedro run --pipeline=train`.
    pipelines["__default__"] = pipelines["train"]
    return pipelines
