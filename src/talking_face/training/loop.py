"""The per-worker step loop shared by predictor pretraining and GAN training.

A `Task` owns the networks, optimizers and one training step; `run_task` drives it on a Ray Train worker:
DDP wrapping and distributed sampling through Ray's `prepare_model` / `prepare_data_loader`, resume from
`ray.train.get_checkpoint()`, a checkpoint every `checkpoint_every` steps, metrics to MLflow from rank 0,
bf16 autocast on GPU, and deterministic seeds. The logged metrics also travel in the checkpoint, so the
final one holds the whole run's history however often it was resumed.
"""

from __future__ import annotations

import os
import random
import tempfile
from contextlib import nullcontext
from typing import Protocol

import numpy as np
import ray.train
import torch
from ray.train import Checkpoint
from ray.train.torch import get_device, prepare_data_loader, prepare_model
from torch.utils.data import DataLoader
from tqdm import tqdm

from talking_face.training.data import ClipBlockSampler, FeatureFrameDataset
from talking_face.training.stream import ShardStream
from talking_face.training.tracking import RankZeroLogger

CHECKPOINT_FILE = "state.pt"


class Task(Protocol):
    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def step(self, batch: dict[str, torch.Tensor], autocast) -> dict[str, float]: ...

    def snapshot(self, batch: dict[str, torch.Tensor], logger: RankZeroLogger, step: int) -> None: ...


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


def task_state(task: Task, step: int, history: list[dict]) -> dict:
    return {
        "step": step,
        "modules": {name: unwrap(module).state_dict() for name, module in task.modules.items()},
        "optimizers": {name: optimizer.state_dict() for name, optimizer in task.optimizers.items()},
        "history": history,
    }


def restore(task: Task) -> tuple[int, list[dict]]:
    """Loads the latest Ray checkpoint into the task; returns the step to start from and the metric history."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0, []
    with checkpoint.as_directory() as folder:
        state = torch.load(os.path.join(folder, CHECKPOINT_FILE), map_location="cpu", weights_only=False)
    for name, module in task.modules.items():
        unwrap(module).load_state_dict(state["modules"][name])
    for name, optimizer in task.optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    return int(state["step"]), list(state.get("history", []))  # older checkpoints kept no history


def report(task: Task, step: int, metrics: dict[str, float], history: list[dict], with_checkpoint: bool) -> None:
    """ray.train.report on every rank; rank 0 attaches the checkpoint when one is due."""
    if not with_checkpoint:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            torch.save(task_state(task, step, history), os.path.join(folder, CHECKPOINT_FILE))
            checkpoint = Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


def dataset_options(config: dict) -> dict:
    """The FeatureFrameDataset settings of a loop configuration."""
    return {
        "context": config["context_frames"],
        "audio_window": config["audio_window"],
        "rollout": int(config.get("rollout_frames", 1)),
        "colour_jitter": float(config.get("colour_jitter", 0.0)),
        "geometry_jitter": float(config.get("geometry_jitter", 0.0)),
        "visemes": bool(config.get("visemes", False)),
        "expert": config.get("sync_expert_config"),
    }


def make_loader(config: dict) -> tuple[DataLoader | ShardStream, ClipBlockSampler | ShardStream]:
    """Frame sequences of this rank's clips: streamed from the feature shards when the configuration has
    them, else read from the feature files and shuffled in blocks of clips (Ray moves those to the device)."""
    context = ray.train.get_context()
    if config.get("feature_shards"):
        shards = config["feature_shards"]
        stream = ShardStream(shards["index"], dataset_options(config), config["batch_size"], config["seed"],
                             context.get_world_rank(), context.get_world_size(), shards.get("storage"),
                             float(shards.get("read_cpus", 0.0)), get_device())  # fmt: skip
        return stream, stream
    block = int(config.get("block_clips", 8))
    dataset = FeatureFrameDataset(config["feature_paths"], cache_clips=block, **dataset_options(config))
    sampler = ClipBlockSampler(dataset, block, config["seed"], context.get_world_rank(), context.get_world_size())
    if len(sampler) < config["batch_size"]:
        raise ValueError(
            f"rank {context.get_world_rank()}: {len(sampler)} training sequences of {dataset.rollout} frames, fewer "
            f"than a batch of {config['batch_size']}: add clips or lower batch_size / rollout_frames"
        )
    loader = DataLoader(dataset, batch_size=config["batch_size"], sampler=sampler, drop_last=True)
    return prepare_data_loader(loader, add_dist_sampler=False), sampler


def batches_from(loader, sampler, start: int):
    """Batches from step `start` on: a shard stream resumes at that very batch, a sampled loader at the
    start of the epoch the step falls in."""
    if isinstance(sampler, ShardStream):
        yield from sampler.batches(start)
        return
    epoch = start // max(1, len(loader))
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def run_task(task: Task, config: dict, loader_factory=make_loader) -> None:
    """Trains `task` for config['steps'] steps (cycling over epochs), resuming from the latest checkpoint;
    `loader_factory(config)` gives the batches and a sampler with `set_epoch`."""
    context = ray.train.get_context()
    rank = context.get_world_rank()
    for name, module in task.modules.items():
        task.modules[name] = prepare_model(module)
    loader, sampler = loader_factory(config)
    start, history = restore(task)
    logger = RankZeroLogger(config.get("mlflow_run") or {}, rank)
    use_gpu = torch.cuda.is_available() and config.get("use_gpu", False)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_gpu and config.get("bf16", True) else nullcontext()
    prefix, steps = config["metric_prefix"], config["steps"]
    progress = tqdm(total=steps, initial=start, desc=prefix, unit="step", disable=rank != 0)
    step = start
    batches = batches_from(loader, sampler, start)
    while step < steps:
        batch = next(batches)
        metrics = task.step(batch, autocast)
        step += 1
        progress.update(1)
        if step % config["log_every"] == 0 or step == steps:
            history.append({"step": step, **metrics})
            logger.metrics({f"{prefix}/{key}": value for key, value in metrics.items()}, step)
            progress.set_postfix({key: f"{value:.3f}" for key, value in list(metrics.items())[:3]})
        if step % config["image_every"] == 0 or step == steps:
            task.snapshot(batch, logger, step)
        due = step % config["checkpoint_every"] == 0 or step == steps
        if due or step % config["log_every"] == 0:
            report(task, step, {"step": step, "resumed_from": start, **metrics}, history, with_checkpoint=due)
    batches.close()
    progress.close()
