"""Project hooks: record on the MLflow run the data version of the feature files a node trains on."""

from __future__ import annotations

import logging

import mlflow
from kedro.framework.hooks import hook_impl

from talking_face.versioning import data_version

logger = logging.getLogger(__name__)

TRAINING_INPUT = "training_feature_paths"  # the input of every node that trains (pretraining and the GAN)
DATA_VERSION_TAG = "data_version"


class DataVersionHook:
    """Tags the active MLflow run (opened by kedro-mlflow in before_pipeline_run) with `data_version` just
    before the first node that reads the training clips: by then the features of this run are final."""

    def __init__(self):
        self._project_path = None
        self._tagged_runs: set[str] = set()

    @hook_impl
    def after_context_created(self, context) -> None:
        self._project_path = context.project_path

    @hook_impl
    def before_node_run(self, node, inputs) -> None:
        run = mlflow.active_run()
        if TRAINING_INPUT not in node.inputs or run is None or run.info.run_id in self._tagged_runs:
            return
        version = data_version(self._project_path)
        mlflow.set_tag(DATA_VERSION_TAG, version)
        self._tagged_runs.add(run.info.run_id)
        logger.info("MLflow run %s: %s = %s", run.info.run_id, DATA_VERSION_TAG, version)
