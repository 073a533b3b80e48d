"""Thin node over talking_face.training: the MAN GAN under Ray Train, from the pretrained predictor."""

from __future__ import annotations

from talking_face.training.run import loop_config, train_gan


def train_man_gan(
    paths: list[str], predictors: dict, params: dict, model: dict, ray_params: dict, features: dict, seed: int
) -> dict:
    """The trained model bundle's state: generator, motion predictor, configuration, feature parameters."""
    extract = features["extract"]
    config = loop_config(params, model, paths, int(extract["crop_size"]), seed, ray_params)
    return train_gan(config, ray_params, predictors, extract)
