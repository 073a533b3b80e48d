"""Project hooks: what every MLflow run records (data version, code and environment), and data checks that
stop a run with one line naming their report."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
from kedro.framework.hooks import hook_impl

from talking_face.checks import DataCheckError
from talking_face.datasets.relative import portable_path
from talking_face.provenance import environment_tags, installed_packages
from talking_face.versioning import data_version

logger = logging.getLogger(__name__)

# The inputs of the nodes that train (pretraining, the GAN) or register: their runs carry the data version.
DATA_VERSION_INPUTS = ("training_feature_paths", "training_data", "data_version")
DATA_VERSION_TAG = "data_version"
PACKAGES_ARTIFACT = "environment/packages.txt"
KEDRO_MLFLOW_LOGGER = "kedro_mlflow.framework.hooks.mlflow_hook"


class _OncePerRun:
    """Acts on the active MLflow run (opened by kedro-mlflow in before_pipeline_run) once per run."""

    def __init__(self):
        self._project_path = None
        self._done: set[str] = set()

    @hook_impl
    def after_context_created(self, context) -> None:
        self._project_path = context.project_path

    def _new_run(self) -> str | None:
        run = mlflow.active_run()
        if run is None or run.info.run_id in self._done:
            return None
        self._done.add(run.info.run_id)
        return run.info.run_id


class DataVersionHook(_OncePerRun):
    """Tags the run with `data_version` just before the first node that trains or registers: by then the
    features of this run are final. The register node reads the same value (catalog entry data_version)."""

    @hook_impl
    def before_node_run(self, node, inputs) -> None:
        if not set(DATA_VERSION_INPUTS) & set(node.inputs):
            return
        run_id = self._new_run()
        if run_id is None:
            return
        version = data_version(self._project_path)
        mlflow.set_tag(DATA_VERSION_TAG, version)
        logger.info("MLflow run %s: %s = %s", run_id, DATA_VERSION_TAG, version)


class EnvironmentHook(_OncePerRun):
    """Records on every run the git commit, the installed packages (a digest and the list as an artifact)
    and the lock file's digest: the environment the run's results came from."""

    @hook_impl
    def before_node_run(self, node, inputs) -> None:
        if self._new_run() is None:
            return
        mlflow.set_tags(environment_tags(self._project_path))
        mlflow.log_text("\n".join(installed_packages()) + "\n", PACKAGES_ARTIFACT)


class DataCheckHook:
    """A node stopped by a DataCheckError: its report's catalog entry becomes the file path the user opens,
    and kedro-mlflow closes its runs quietly (the one line that ends the command says what happened)."""

    def __init__(self):
        self._quieted: tuple[logging.Logger, int] | None = None

    @hook_impl
    def on_node_error(self, error, node, catalog) -> None:
        if not isinstance(error, DataCheckError):
            return
        error.report = report_path(catalog, error.report)
        quiet = logging.getLogger(KEDRO_MLFLOW_LOGGER)
        self._quieted = (quiet, quiet.level)
        quiet.setLevel(logging.WARNING)

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error) -> None:
        if self._quieted is not None:
            quiet, level = self._quieted
            quiet.setLevel(level)
            self._quieted = None


def report_path(catalog, name: str) -> str:
    """The file behind catalog entry `name` (searched through wrapping datasets), relative to the working
    directory when under it, else `name` itself."""
    try:
        description = catalog[name]._describe()
    except Exception:  # not an entry of this catalog: the name is all there is
        return name
    while isinstance(description, dict):
        for key in ("filepath", "path"):
            if description.get(key):
                return portable_path(str(description[key]), Path.cwd())
        description = description.get("dataset")
    return name
