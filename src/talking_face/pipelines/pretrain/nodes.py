"""Thin nodes over talking_face.training: choose the training clips, then pretrain the motion predictors and
train the lip-sync expert under Ray Train, and the mouth layer's opening network."""

from __future__ import annotations

import pandas as pd

from matplotlib.figure import Figure

from talking_face.features.shards import split_index
from talking_face.models import model_config
from talking_face.training.mouth import train_mouth_opening
from talking_face.training.figures import history_figure
from talking_face.training.run import loop_config, pretrain_predictors, sync_expert_config, train_sync_expert


def training_feature_paths(feature_summary: pd.DataFrame, feature_files: dict[str, str]) -> list[str]:
    """The feature files of the accepted clips of the train split (test clips stay unseen)."""
    train_ids = feature_summary.loc[feature_summary["split"] == "train", "clip_id"]
    return [feature_files[clip_id] for clip_id in sorted(train_ids) if clip_id in feature_files]


def training_data(paths: list[str], feature_shards: dict, params: dict, features: dict) -> list[str] | dict:
    """What the training workers read: the train split's shards streamed by Ray Data (`source: shards`;
    {"index", "storage", "read_cpus"}), or the feature files themselves (`source: files`)."""
    if params["source"] == "files":
        return paths
    if params["source"] != "shards":
        raise ValueError(f"training_data.source {params['source']!r}: expected shards or files")
    return {"index": split_index(feature_shards, "train"), "storage": features["shards"].get("storage"),
            "read_cpus": float(params.get("read_cpus", 0.0))}  # fmt: skip


def pretrain(
    data: list[str] | dict, params: dict, model: dict, ray_params: dict, features: dict, seed: int
) -> tuple[dict, pd.DataFrame]:
    """Both predictors' weights and the run's loss history (one row per logged step) for DVC plots."""
    config = loop_config(params, model, data, int(features["extract"]["crop_size"]), seed, ray_params)
    return pretrain_predictors(config, ray_params)


def sync_expert(paths: list[str], params: dict, ray_params: dict, seed: int) -> tuple[dict, pd.DataFrame, Figure]:
    """The lip-sync expert trained on the training clips (never the test people), its metric history and
    its loss and accuracy curves."""
    state, history = train_sync_expert(sync_expert_config(params, paths, seed, ray_params), ray_params)
    title = f"lip-sync expert {state['version']}: {len(paths)} training clips"
    return state, history, history_figure(history, ("loss", "accuracy", "offset_accuracy"), title)


def mouth_opening(
    feature_summary: pd.DataFrame, feature_files: dict[str, str], params: dict, model: dict, seed: int
) -> tuple[dict, dict]:
    """The mouth layer's opening network (models.mouth), trained on the train split's clips with their
    speakers (the gain is fitted on held-out people), and its report; ({}, {"enabled": False}) when
    `params["enabled"]` is false: the generator's own mouth, as the paper's."""
    if not params.get("enabled", True):
        return {}, {"enabled": False}
    rows = feature_summary[feature_summary["split"] == "train"].sort_values("clip_id")
    clips = [(feature_files[row.clip_id], str(row.speaker)) for row in rows.itertuples() if row.clip_id in feature_files]
    window = model_config(model["preset"], model.get("variant"), model.get("overrides")).generator.audio_window
    state, report = train_mouth_opening(clips, params, window, seed)
    return state, {"enabled": True, **report}
