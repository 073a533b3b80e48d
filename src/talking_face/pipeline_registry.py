"""Pipelines by name: one folder per pipeline under `pipelines/`, each with `create_pipeline()`."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    # Kedro imports only the requested pipelines' modules, so `train` is here only when it was asked for
    # (by name, or as the default run).
    pipelines = find_pipelines(raise_errors=True)
    if "train" in pipelines:
        pipelines["__default__"] = pipelines["train"]
    return pipelines
