"""Kedro project settings: the config loader and the hooks that run with every session."""

import os
from pathlib import Path

from kedro.config import OmegaConfigLoader

from talking_face.hooks import DataCheckHook, DataVersionHook, EnvironmentHook

# No run touches the network: Kedro telemetry, Great Expectations analytics and Ray usage stats are off.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# kedro-mlflow registers its own hook through its entry point; ours tag the run it opens and turn a
# stop on a data check into one line.
HOOKS = (DataVersionHook(), EnvironmentHook(), DataCheckHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/gpu, conf/local) overrides single keys, not whole parameter groups.
    "merge_strategy": {"parameters": "soft"},
    # ${env:NAME,default}, an unset or empty variable giving the default: conf/base/mlflow.yml reads
    # MLFLOW_TRACKING_URI (a team's server; CI passes an empty one when no server is configured).
    # ${sqlite_here:mlflow.db}: SQLite in the working directory (a `kedro run`'s project root), absolute: MLflow
    # keeps one database engine per URI string, so a relative one sends a second project's runs to the first's.
    "custom_resolvers": {
        "env": lambda name, default=None: os.environ.get(name) or default,
        "sqlite_here": lambda name: f"sqlite:///{Path.cwd() / name}",
    },
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
}
