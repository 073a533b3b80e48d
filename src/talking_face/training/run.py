"""Driver-side entry points: build the loop configuration, run it under Ray Train, return the weights.

A run's Ray name is a hash of everything that determines it (configuration, predictor start weights, the
feature files) except its length and logging cadence, so re-running unchanged work returns its latest
checkpoint, raising `steps` continues from it, and changing anything else starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import os

import pandas as pd
import torch

from talking_face.checks import DataCheckError
from talking_face.features.schema import file_identity
from talking_face.features.shards import absolute_uri
from talking_face.models import model_config
from talking_face.models.sync_expert import SyncExpert, SyncExpertConfig, expert_state
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.training import ray_run
from talking_face.conditioning.inputs import motion_predictor_name
from talking_face.training.data import clip_length
from talking_face.training.gan import gan_loop
from talking_face.training.loop import CHECKPOINT_FILE
from talking_face.training.pretrain import pretrain_loop
from talking_face.training.sync_expert import sync_expert_loop
from talking_face.training.tracking import current_run


# Why clips are missing from training: the features step's rejections (its catalog entry).
FEATURE_REJECTIONS_REPORT = "feature_rejected_clips"


class TooFewTrainingClips(DataCheckError, ValueError):
    """The accepted training clips cannot fill a batch: stops before Ray starts."""

    def __init__(self, message: str):
        super().__init__("training clips", message, FEATURE_REJECTIONS_REPORT)


def training_clips(data: list[str] | dict) -> list[dict]:
    """n_frames, params_hash and content_hash of each training clip: from the shard index when `data` is
    the train split's shards ({"index", "storage"}), else read from the feature files (a list of paths)."""
    if isinstance(data, dict):
        return [clip for shard in data["index"]["shards"] for clip in shard["clips"]]
    return [{"n_frames": clip_length(path), **file_identity(path)} for path in sorted(data)]


def loop_config(params: dict, model: dict, data: list[str] | dict, image_size: int, seed: int, ray_params: dict) -> dict:
    """The per-worker configuration: step settings, the model preset/variant, and the training clips: the
    feature files (a list of paths) or the train split's shards ({"index", "storage"}, features.shards)."""
    clips = training_clips(data)
    if not clips:
        raise TooFewTrainingClips("no training clips: the features step accepted no clip of the train split")
    rollout, workers = int(params.get("rollout_frames", 1)), int(ray_params.get("num_workers", 1))
    check_sequences([clip["n_frames"] for clip in clips], rollout, int(params["batch_size"]), workers)
    overrides = {**(model.get("overrides") or {}), "image_size": image_size}
    if model.get("output"):
        overrides["output"] = model["output"]
    models = model_config(model["preset"], model.get("variant"), overrides)
    return {
        **params,
        "preset": model["preset"],
        "variant": model.get("variant"),
        "overrides": overrides,
        **({"feature_shards": with_absolute_uri(data)} if isinstance(data, dict) else {"feature_paths": sorted(data)}),
        "context_frames": models.flow.context_frames,
        "audio_window": models.generator.audio_window,
        "visemes": "visemes" in models.generator.man.enabled,
        "seed": seed,
        "use_gpu": bool(ray_params.get("use_gpu", False)),
    }


def with_absolute_uri(shards: dict) -> dict:
    """Training shards ({"index", ...}) whose local root is absolute: Ray Train workers run in other folders."""
    return {**shards, "index": {**shards["index"], "uri": absolute_uri(shards["index"]["uri"])}}


def check_sequences(lengths: list[int], rollout: int, batch_size: int, workers: int) -> None:
    """Fails before Ray starts when clips of these lengths cannot fill one batch per worker with
    `rollout`-frame sequences."""
    sequences = sum(max(0, length - rollout + 1) for length in lengths)
    if sequences < batch_size * workers:
        raise TooFewTrainingClips(
            f"{len(lengths)} training clips of {min(lengths)}-{max(lengths)} frames give {sequences} sequences of "
            f"{rollout} frames, fewer than a batch of {batch_size} for each of {workers} worker(s): add clips or "
            "lower batch_size / rollout_frames"
        )


# Settings that do not change what is learned up to a given step: a run that differs only in these resumes.
RESUMABLE_KEYS = ("steps", "log_every", "image_every", "checkpoint_every", "mlflow_run", "predictor_state")


def run_name(prefix: str, config: dict) -> str:
    identity = {key: value for key, value in config.items() if key not in RESUMABLE_KEYS}
    # The networks as this code builds them: a code change to them (e.g. a new MAN source) starts afresh
    # instead of resuming a checkpoint whose weights no longer fit.
    if "expert" in config:
        identity["networks"] = repr(SyncExpert(SyncExpertConfig(**config["expert"])))
    else:
        identity["networks"] = model_config(config["preset"], config.get("variant"), config.get("overrides")).to_dict()
    if "sync_expert_state" in identity:  # the frozen expert of the sync loss, by its version
        identity["sync_expert_state"] = identity["sync_expert_state"]["version"]
    if "feature_paths" in identity:  # the clips by name, not where this checkout keeps them
        identity["feature_paths"] = sorted(os.path.basename(path) for path in identity["feature_paths"])
    if "feature_shards" in identity:  # the shards' layout, not where they are stored nor the store's options
        identity["feature_shards"] = [[shard["path"], [clip["clip_id"] for clip in shard["clips"]]]
                                      for shard in identity["feature_shards"]["index"]["shards"]]  # fmt: skip
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    for clip in training_clips(config.get("feature_shards") or config["feature_paths"]):
        # The hashes each feature file or shard index stores name its content; file times change with every checkout.
        digest.update(f"{clip['params_hash']}:{clip['content_hash']}".encode())
    if config.get("predictor_state"):
        for key, value in config["predictor_state"].items():
            digest.update(key.encode() + value.cpu().numpy().tobytes())
    return f"{prefix}-{digest.hexdigest()[:12]}"


def final_state(result) -> dict:
    with result.checkpoint.as_directory() as folder:
        return torch.load(os.path.join(folder, CHECKPOINT_FILE), map_location="cpu", weights_only=False)


def history_table(state: dict) -> pd.DataFrame:
    """The run's logged metrics from its final checkpoint: one row per logged step (the loss curves DVC plots)."""
    history = state.get("history")  # absent from checkpoints written before the history was kept in them
    return pd.DataFrame(history) if history else pd.DataFrame(columns=["step"])


def pretrain_predictors(config: dict, ray_params: dict) -> tuple[dict[str, dict], pd.DataFrame]:
    """{"keypoint": state_dict, "flow": state_dict} after pretraining both motion predictors, and the
    loss history."""
    state = final_state(fit_pretraining(config, ray_params))
    return state["modules"], history_table(state)


def sync_expert_config(params: dict, paths: list[str], seed: int, ray_params: dict) -> dict:
    """The expert's per-worker configuration (`training.sync_expert`) from the `sync_expert` parameters."""
    if not paths:
        raise TooFewTrainingClips("no training clips: the features step accepted no clip of the train split")
    return {**params, "expert": SyncExpertConfig(**(params.get("expert") or {})).to_dict(), "feature_paths": sorted(paths),
            "seed": seed, "use_gpu": bool(ray_params.get("use_gpu", False))}  # fmt: skip


def train_sync_expert(config: dict, ray_params: dict) -> tuple[dict, pd.DataFrame]:
    """The trained expert's file content (`models.sync_expert.expert_state`) and its metric history."""
    name = run_name("sync-expert", config)
    state = final_state(ray_run.fit(sync_expert_loop, {**config, "mlflow_run": current_run()}, ray_params, name))
    expert = SyncExpert(SyncExpertConfig(**config["expert"]))
    expert.load_state_dict(state["modules"]["expert"])
    return expert_state(expert), history_table(state)


def fit_pretraining(config: dict, ray_params: dict):
    """The Ray Train result of pretraining (metrics, checkpoint)."""
    return ray_run.fit(pretrain_loop, {**config, "mlflow_run": current_run()}, ray_params, run_name("pretrain", config))


def gan_predictor_state(config: dict, predictor_states: dict[str, dict]) -> dict:
    """The pretrained weights of the predictor that feeds the GAN's motion source (flow UNet or keypoint
    hourglass), from pretraining's {"keypoint": ..., "flow": ...}."""
    models = model_config(config["preset"], config.get("variant"), config["overrides"])
    return predictor_states[motion_predictor_name(models)]


def with_sync_expert(config: dict, expert: dict) -> dict:
    """The GAN configuration with the frozen lip-sync expert (`expert_state`) its sync loss scores the generated
    frames with, when that loss has a weight; the data then carries the expert's speech windows."""
    if not config["loss_weights"].get("sync"):
        return config
    return {**config, "sync_expert_state": expert, "sync_expert_config": expert["config"]}


def train_gan(config: dict, ray_params: dict, predictor_states: dict, features: dict) -> tuple[dict, pd.DataFrame]:
    """The trained model bundle's state (see conditioning.bundle), starting the motion predictor from pretraining,
    and the loss history."""
    models = model_config(config["preset"], config.get("variant"), config["overrides"])
    config = {**config, "predictor_state": gan_predictor_state(config, predictor_states)}
    name = run_name("train", config)
    result = ray_run.fit(gan_loop, {**config, "mlflow_run": current_run()}, ray_params, name)
    state = final_state(result)
    modules = state["modules"]
    bundle = TalkingFaceModel.build(models, features)
    bundle.generator.load_state_dict(modules["generator"])
    bundle.predictor.load_state_dict(modules["predictor"])
    return bundle.state(), history_table(state)
