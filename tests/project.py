"""Runs registered pipelines the way `kedro run` does, in a throwaway copy of the project's config."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import mlflow
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro_mlflow.framework.hooks.mlflow_hook import mlflow_hook

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_FOLDERS = ["01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input", "06_models", "07_model_output", "08_reporting"]


def make_project(folder: Path) -> Path:
    """Copies pyproject.toml, .telemetry and conf/ into `folder` with empty data folders."""
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, folder / name)
    shutil.copytree(PROJECT_ROOT / "conf", folder / "conf", ignore=shutil.ignore_patterns("local"))
    (folder / "conf" / "local").mkdir()
    (folder / "src").mkdir()  # bootstrap_project wants the source folder; the package itself is installed
    for name in DATA_FOLDERS:
        (folder / "data" / name).mkdir(parents=True)
    return folder


@contextmanager
def inside(folder: Path):
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


@contextmanager
def tracking_put_back():
    """MLflow's process-wide state as it was before the block, for the next project or test in this process."""
    was_set, previous = mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri()
    try:
        yield
    finally:
        # kedro-mlflow reopens its run before every node and MLflow 3 stacks each reopening, so the run
        # outlives the session; close it, or the next session or test in this process logs into it.
        while mlflow.active_run() is not None:
            mlflow.end_run()
        # Setting a tracking URI also sets MLFLOW_TRACKING_URI, which conf/base/mlflow.yml reads: unset both.
        mlflow.set_tracking_uri(previous if was_set else None)
        # kedro-mlflow's hook is one object per process and keeps a run's id through a later session whose
        # pipeline it does not track, then reopens that run before each node: forget it.
        mlflow_hook.run_id = None


def run_pipeline(folder: Path, pipeline: str, params: dict | None = None, env: str | None = None) -> dict:
    """`kedro run --pipeline=<pipeline> --params=... [--env=<env>]` inside `folder`; returns the run's free
    outputs."""
    with inside(folder), tracking_put_back():
        bootstrap_project(folder)
        with KedroSession.create(project_path=folder, env=env, runtime_params=params or {}) as session:
            return session.run(pipeline_names=[pipeline])
