"""Thin node over talking_face.training: the MAN GAN under Ray Train, from the pretrained predictor."""

from __future__ import annotations

import pandas as pd

from talking_face.training.run import loop_config, train_gan


def train_man_gan(
    paths: list[str], predictors: dict, params: dict, model: dict, ray_params: dict, features: dict, seed: int
) -> tuple[dict, pd.DataFrame]:
    """The trained model bundle's state (generator, motion predictor, configuration, feature parameters)
    and the run's loss history (one row per logged step) for DVC plots."""
    extract = features["extract"]
    config = loop_config(params, model, paths, int(extract["crop_size"]), seed, ray_params)
    return train_gan(config, ray_params, predictors, extract)
