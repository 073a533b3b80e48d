"""Thin nodes over talking_face.training: choose the training clips, then pretrain under Ray Train."""

from __future__ import annotations

import pandas as pd

from talking_face.training.run import loop_config, pretrain_predictors


def training_feature_paths(feature_summary: pd.DataFrame, feature_files: dict[str, str]) -> list[str]:
    """The feature files of the accepted clips of the train split (test clips stay unseen)."""
    train_ids = feature_summary.loc[feature_summary["split"] == "train", "clip_id"]
    return [feature_files[clip_id] for clip_id in sorted(train_ids) if clip_id in feature_files]


def pretrain(
    paths: list[str], params: dict, model: dict, ray_params: dict, features: dict, seed: int
) -> tuple[dict, pd.DataFrame]:
    """Both predictors' weights and the run's loss history (one row per logged step) for DVC plots."""
    config = loop_config(params, model, paths, int(features["extract"]["crop_size"]), seed, ray_params)
    return pretrain_predictors(config, ray_params)
