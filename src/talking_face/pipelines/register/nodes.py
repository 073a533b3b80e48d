"""Thin nodes over talking_face.registry: the data version, then registration and the promotion gate."""

from __future__ import annotations

import pandas as pd

from talking_face.registry import data_version, register_and_gate


def training_data_version(manifest: pd.DataFrame, training_feature_paths: list[str]) -> str:
    """The data version the model was trained and evaluated on (see registry.versions.data_version)."""
    return data_version(manifest, training_feature_paths)


def register_model(
    model_state: dict, metrics: dict, clips: list[dict], version_of_data: str, params: dict, evaluate_params: dict
) -> dict:
    """Registers the bundle (once per identical bundle), tags it, sets `challenger`, runs the gate for
    `champion`; the decision with its reason, as recorded on the version."""
    return register_and_gate(model_state, metrics, clips, version_of_data, params, evaluate_params).to_dict()
