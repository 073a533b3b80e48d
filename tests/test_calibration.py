"""The mouth strength chosen after training, on small real feature files (sample-generator clips through the
feature extraction at a 32-pixel crop): the choice by the promotion gate's checks, its table and figure, the node's guard, and the strength
travelling with the model file."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.evaluation.calibration import calibrate_mouth_strength, calibration_figure
from talking_face.evaluation.run import select_clips
from talking_face.models.sync_expert import SyncExpert, expert_state
from talking_face.pipelines.train.nodes import calibrate_model, gate_judge
from tests.tiny_models import make_feature_clips, tiny_bundle

STRENGTHS = (1.0, 0.5, 0.25)
JUDGE = gate_judge(None)  # the promotion gate's default checks


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[pd.DataFrame, dict[str, str]]:
    folder = tmp_path_factory.mktemp("calibration")
    summary = make_feature_clips(folder, [("spk00_clip01", "test_seen"), ("spk01_clip01", "test_unseen")])
    return summary, {clip_id: str(folder / f"{clip_id}.npz") for clip_id in summary["clip_id"]}


def bold_model() -> TalkingFaceModel:
    """A model that paints the mouth and eyes far brighter than any real frame: worse than the photo."""
    model = TalkingFaceModel.from_state(tiny_bundle(0))
    with torch.no_grad():
        model.generator.composite_head.to_change.bias.fill_(1.0)
    return model


def test_a_model_that_keeps_the_photo_keeps_its_full_strength(clips):
    summary, files = clips
    model = TalkingFaceModel.from_state(tiny_bundle(0))  # untrained: nothing painted, nothing moved
    calibration = calibrate_mouth_strength(model, select_clips(summary, files, ["test_seen"]), STRENGTHS, JUDGE)
    table = calibration.table
    assert calibration.strength == 1.0 and table["checks_passed"].nunique() == 1  # every strength alike: the largest
    assert {"motion_corr", "phone_sync_corr", "photo_ssim", "real_phone_sync_corr"} <= set(table.columns)
    assert "the most of any strength (on a tie, the motion amplitude nearest the real mouth's) on 1 held-out clip" in calibration.reason


def test_a_model_worse_than_the_photo_is_turned_down_by_the_gates_checks_and_keeps_its_own_strength(clips):
    summary, files = clips
    model = bold_model()
    calibration = calibrate_mouth_strength(model, select_clips(summary, files, ["test_seen"]), STRENGTHS, JUDGE)
    table = calibration.table.set_index("strength")
    assert list(table.index) == [1.0, 0.5, 0.25]
    # The more of the bright mouth, the further from the real frames, and the fewer checks it passes.
    assert table["ssim"].is_monotonic_increasing and table["psnr"].is_monotonic_increasing
    assert (table["ssim"] < table["photo_ssim"]).all()
    # The image checks fail less with less of it (dlib's landmarks on a face painted this bright say little).
    image_checks = (table["ssim"] >= table["photo_ssim"] - 0.005).astype(int) + (table["psnr"] >= table["photo_psnr"] - 0.5)
    assert image_checks.is_monotonic_increasing
    most = table[table["checks_passed"] == table["checks_passed"].max()]
    nearest = (most["motion_amplitude"] - 1).abs()
    assert calibration.strength == max(nearest.index[nearest == nearest.min()])  # the most checks, then the real mouth's size
    assert model.mouth_strength == 1.0  # the caller decides what to keep
    figure = calibration_figure(calibration)
    assert len(figure.axes) == 5 and figure.axes[0].lines


def test_the_node_stores_the_strength_in_the_model_file_and_refuses_the_unseen_people(clips):
    summary, files = clips
    state = bold_model().state()
    params = {"split": "test_seen", "strengths": list(STRENGTHS), "max_clips": 1}
    expert = expert_state(SyncExpert())
    calibrated, table, _, strength = calibrate_model(state, summary, files, params, {}, {}, expert, {}, {})
    assert len(table) == 3 and calibrated["mouth_strength"] == strength in STRENGTHS
    assert table["expert_confidence"].notna().all() and table["real_expert_confidence"].notna().all()
    assert TalkingFaceModel.from_state(calibrated).mouth_strength == strength
    with pytest.raises(ValueError, match="calibration.split test_unseen: .*judged on"):
        calibrate_model(state, summary, files, {**params, "split": "test_unseen"}, {}, {}, expert, {}, {})


def test_model_files_without_a_strength_load_at_full_strength_and_a_bad_one_is_refused():
    state = tiny_bundle(0)
    del state["mouth_strength"]
    assert TalkingFaceModel.from_state(state).mouth_strength == 1.0
    with pytest.raises(ValueError, match="mouth strength must be between 0 and 1, got 1.5"):
        TalkingFaceModel.from_state({**state, "mouth_strength": 1.5})
