"""Runs registered pipelines the way `kedro run` does, in a throwaway copy of the project's config."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import mlflow
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

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


def run_pipeline(folder: Path, pipeline: str, params: dict | None = None) -> dict:
    """`kedro run --pipeline=<pipeline> --params=...` inside `folder`; returns the run's free outputs."""
    with inside(folder):
        bootstrap_project(folder)
        try:
            with KedroSession.create(project_path=folder, runtime_params=params or {}) as session:
                return session.run(pipeline_names=[pipeline])
        finally:
            # kedro-mlflow reopens its run before every node and MLflow 3 stacks each reopening, so the
            # run outlives the session; close it, or the next session or test in this process logs into it.
            while mlflow.active_run() is not None:
                mlflow.end_run()
