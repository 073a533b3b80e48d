"""The metric history of a training run, read back from MLflow: the loss curves DVC plots."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient


def metric_history(mlflow_run: dict, prefix: str) -> pd.DataFrame:
    """One row per logged step, one column per metric under `prefix/` (the prefix dropped), from the run
    `mlflow_run` (training.tracking.current_run()); only a `step` column when there is no run."""
    if not mlflow_run:
        return pd.DataFrame(columns=["step"])
    client = MlflowClient(tracking_uri=mlflow_run["tracking_uri"])
    keys = sorted(key for key in client.get_run(mlflow_run["run_id"]).data.metrics if key.startswith(f"{prefix}/"))
    columns = {
        key[len(prefix) + 1 :]: pd.Series({m.step: m.value for m in client.get_metric_history(mlflow_run["run_id"], key)})
        for key in keys
    }
    if not columns:
        return pd.DataFrame(columns=["step"])
    return pd.DataFrame(columns).rename_axis("step").sort_index().reset_index()
