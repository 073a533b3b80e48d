"""Thin node over talking_face.training: the MAN GAN under Ray Train, from the pretrained predictor."""

from __future__ import annotations

import pandas as pd

from talking_face.training.history import metric_history
from talking_face.training.run import loop_config, train_gan
from talking_face.training.tracking import current_run


def train_man_gan(
    paths: list[str], predictors: dict, params: dict, model: dict, ray_params: dict, features: dict, seed: int
) -> tuple[dict, pd.DataFrame]:
    """The trained model bundle's state (generator, motion predictor, configuration, feature parameters)
    and the run's loss history (one row per logged step) for DVC plots."""
    extract = features["extract"]
    config = loop_config(params, model, paths, int(extract["crop_size"]), seed, ray_params)
    state = train_gan(config, ray_params, predictors, extract)
    return state, metric_history(current_run(), params["metric_prefix"])
