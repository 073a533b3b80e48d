"""Runs a per-worker training function under Ray Train's TorchTrainer, configured from parameters.

`ray_params` (the `ray:` block of the training parameters):
  address: null          # null starts Ray locally inside the run; "auto" or "ray://host:10001" joins a cluster
  num_workers: 1         # data-parallel workers (DDP through prepare_model / prepare_data_loader)
  use_gpu: false
  resources_per_worker: {CPU: 1}
  storage_path: data/06_models/ray   # local folder or any URI Ray supports (s3://, gs://)
  max_failures: 1        # FailureConfig: a crashed worker group restarts from the latest checkpoint
  num_to_keep: 2         # checkpoints kept
A run with the same name and storage path resumes from its latest checkpoint (Ray Train restores it and
the loop reads it with `ray.train.get_checkpoint()`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import ray
from ray.train import CheckpointConfig, FailureConfig, Result, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

log = logging.getLogger(__name__)


def resolve_storage(storage_path: str) -> str:
    """Ray wants an absolute path or a URI; relative paths are taken from the project root (cwd)."""
    if "://" in storage_path:
        return storage_path
    return str(Path(storage_path).resolve())


def ensure_ray(address: str | None, num_cpus: int | None = None) -> None:
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)


def fit(loop: Callable[[dict], None], loop_config: dict, ray_params: dict, run_name: str) -> Result:
    """Trains `loop` on `num_workers` Ray workers and returns the Result with the latest checkpoint."""
    workers = int(ray_params.get("num_workers", 1))
    resources = dict(ray_params.get("resources_per_worker") or {"CPU": 1})
    ensure_ray(ray_params.get("address"), num_cpus=ray_params.get("num_cpus"))
    trainer = TorchTrainer(
        loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=bool(ray_params.get("use_gpu", False)), resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=run_name,
            storage_path=resolve_storage(ray_params.get("storage_path", "data/06_models/ray")),
            failure_config=FailureConfig(max_failures=int(ray_params.get("max_failures", 1))),
            checkpoint_config=CheckpointConfig(num_to_keep=int(ray_params.get("num_to_keep", 2))),
        ),
    )
    log.info("Ray Train %s: %d worker(s), resources %s", run_name, workers, resources)
    result = trainer.fit()
    if result.error:
        raise RuntimeError(f"Ray Train run {run_name} failed: {result.error}")
    return result
