"""MLflow logging from inside Ray workers: only rank 0 logs, into the run the Kedro session opened."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient


def absolute_tracking_uri(uri: str) -> str:
    """Ray workers run in another working directory: a relative SQLite path must become absolute."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).is_absolute():
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def current_run() -> dict:
    """What a worker needs to log into the driver's active MLflow run ({} when there is none)."""
    run = mlflow.active_run()
    if run is None:
        return {}
    return {"tracking_uri": absolute_tracking_uri(mlflow.get_tracking_uri()), "run_id": run.info.run_id}


class RankZeroLogger:
    """Logs metrics and figures to one MLflow run; a no-op on other ranks or without a run."""

    def __init__(self, mlflow_run: dict, rank: int):
        self.enabled = bool(mlflow_run) and rank == 0
        if self.enabled:
            self.client = MlflowClient(tracking_uri=mlflow_run["tracking_uri"])
            self.run_id = mlflow_run["run_id"]

    def metrics(self, values: dict[str, float], step: int) -> None:
        if not self.enabled:
            return
        timestamp = int(time.time() * 1000)
        batch = [Metric(key, float(value), timestamp, step) for key, value in values.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def image(self, image, artifact_file: str) -> None:
        if self.enabled:
            self.client.log_image(self.run_id, image, artifact_file=artifact_file)
