"""Thin nodes over talking_face.training and talking_face.evaluation.calibration: the MAN GAN under Ray
Train from the pretrained predictor, then the mouth strength it generates at, chosen by the gate's checks."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.evaluation.calibration import SET_NAME as CALIBRATION_SET
from talking_face.evaluation.calibration import Judge, calibrate_mouth_strength, calibration_figure
from talking_face.evaluation.run import select_clips
from talking_face.models.mouth import MouthOpening
from talking_face.models.sync_expert import load_expert
from talking_face.registry.gate import gate
from talking_face.training.run import loop_config, train_gan, with_sync_expert


def train_man_gan(
    data: list[str] | dict, predictors: dict, params: dict, model: dict, ray_params: dict, features: dict, seed: int,
    expert: dict,
) -> tuple[dict, pd.DataFrame]:
    """The trained model bundle's state (generator, motion predictor, configuration, feature parameters)
    and the run's loss history (one row per logged step) for DVC plots; `expert` (the lip-sync expert's file)
    scores the generated frames when the sync loss has a weight."""
    extract = features["extract"]
    config = loop_config(params, model, data, int(extract["crop_size"]), seed, ray_params)
    return train_gan(with_sync_expert(config, expert), ray_params, predictors, extract)


def calibrate_model(
    model_state: dict, feature_summary: pd.DataFrame, feature_files: dict[str, str], params: dict, evaluate: dict,
    register: dict, expert_state: dict, mouth_state: dict, layers: dict,
) -> tuple[dict, pd.DataFrame, Figure, float]:
    """The model bundle with its part layers (the mouth's with `mouth_state`, the opening network, {}: none;
    the eyelids' when `layers["eyelids"]`) and its mouth strength chosen on `params["split"]` (held-out clips of the training speakers) by the promotion gate's
    checks (`register.gate`), the table of every strength tried, its figure and the strength (an MLflow
    metric)."""
    if params["split"] == "test_unseen":
        raise ValueError("calibration.split test_unseen: the model would be tuned on the people it is judged on")
    model = TalkingFaceModel.from_state(model_state)
    model.mouth = MouthOpening.from_state(mouth_state) if mouth_state else None
    model.eyelids = bool(layers.get("eyelids", False))
    clips = select_clips(feature_summary, feature_files, [params["split"]], params.get("max_clips"))
    calibration = calibrate_mouth_strength(model, clips, tuple(params["strengths"]), gate_judge(register.get("gate")),
                                           evaluate, load_expert(expert_state))  # fmt: skip
    model.mouth_strength = calibration.strength
    return model.state(), calibration.table, calibration_figure(calibration), calibration.strength


def gate_judge(rules: dict | None) -> Judge:
    """The promotion gate's checks (without a champion) as the calibration's judge: (passed, of all)."""
    def judge(summary: dict[str, float]) -> tuple[int, int]:
        result = gate(summary, None, {**(rules or {}), "split": CALIBRATION_SET})
        return sum(check.passed for check in result.checks), len(result.checks)

    return judge
