"""The `evaluate` pipeline through a Kedro session on small real feature files (sample-generator clips at a
32-pixel crop) with an untrained model bundle: metrics file, per-clip table, Table-1 layout, videos and
figures, all logged to MLflow; and the library pieces it stands on."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from talking_face.atomic import torch_save
from talking_face.evaluation.run import evaluate_model, load_clip_media, select_clips
from talking_face.evaluation.summary import summarise
from talking_face.media.video import probe
from talking_face.serving.animate import animate
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.photo import PasteBack, whole_photo
from talking_face.versioning import data_version
from tests.project import make_project, run_pipeline
from tests.tiny_models import make_feature_clips, tiny_bundle, tiny_expert

CLIPS = [("spk00_clip01", "test_unseen"), ("spk01_clip01", "test_seen"), ("spk02_clip01", "train")]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = make_project(tmp_path_factory.mktemp("evaluate"))
    summary = make_feature_clips(folder / "data/04_feature/clips", CLIPS)
    summary.to_parquet(folder / "data/04_feature/feature_summary.parquet")
    torch_save(tiny_bundle(0), folder / "data/06_models/talking_face_model.pt")
    torch_save(tiny_expert(), folder / "data/06_models/sync_expert.pt")
    run_pipeline(folder, "evaluate")
    return folder


@pytest.fixture(scope="module")
def metrics(project) -> dict:
    return json.loads((project / "data/08_reporting/metrics.json").read_text())


def test_metrics_file_is_flat_numeric_per_split_with_the_baseline_beside_the_model(metrics):
    assert all(isinstance(value, float) and math.isfinite(value) for value in metrics.values())
    assert metrics["test_unseen.n_clips"] == 1 and metrics["test_seen.n_clips"] == 1
    assert not any(key.startswith("train") for key in metrics)
    for split in ("test_unseen", "test_seen"):
        for key in ("ssim", "psnr", "cpbd", "lmd_mouth", "lmd_all", "identity_cosine", "sync_corr", "blinks_per_s"):
            assert f"{split}.model.{key}" in metrics and f"{split}.baseline.{key}" in metrics
        assert {f"{split}.real.{key}" for key in ("cpbd", "sync_corr", "blinks_per_s")} <= set(metrics)
        # The baseline is the source frame repeated: a still mouth has no sync and nothing blinks.
        assert metrics[f"{split}.baseline.sync_corr"] == 0.0 and metrics[f"{split}.baseline.blinks_per_s"] == 0.0
        # The sample clips' mouths follow their speech; a barely trained composite generator returns (about)
        # the photo, so it comes no closer to the real frames than the source frame repeated.
        assert metrics[f"{split}.real.sync_corr"] > 0.5
        assert metrics[f"{split}.model.ssim"] <= metrics[f"{split}.baseline.ssim"] + 1e-9
        # Talking: every system has the expert's and the phonemes' figures; the still photo's mouth agrees
        # with the real one not at all, the real video with itself fully.
        for system in ("model", "baseline", "real"):
            assert {f"{split}.{system}.{key}" for key in ("expert_confidence", "phone_sync_corr", "motion_corr")} <= set(metrics)
        assert metrics[f"{split}.baseline.motion_corr"] == 0.0 and metrics[f"{split}.real.motion_corr"] == 1.0
        assert f"{split}.real.expert_shifted_confidence" in metrics and f"{split}.model.blink_rate_high" in metrics


def test_per_clip_table_has_model_baseline_and_real_rows_of_the_test_clips(project):
    per_clip = pd.read_csv(project / "data/08_reporting/evaluation_per_clip.csv")
    assert sorted(per_clip["clip_id"].unique()) == ["spk00_clip01", "spk01_clip01"]
    assert sorted(per_clip.groupby("clip_id")["system"].apply(sorted).iloc[0]) == ["baseline", "model", "real"]
    assert per_clip["wer"].isna().all() and per_clip["wer_note"].dropna().str.startswith("not configured").all()
    assert (per_clip["n_frames"] == 25).all()


def test_markdown_table_is_laid_out_like_the_papers_table_1(project, metrics):
    table = (project / "data/08_reporting/metrics_table.md").read_text()
    assert "Unseen speakers (test_unseen): 1 clip" in table and "Seen speakers (test_seen): 1 clip" in table
    header = next(line for line in table.splitlines() if line.startswith("| Method"))
    assert [cell.strip() for cell in header.strip("|").split("|")][:9] == [
        "Method", "SSIM↑", "PSNR↑ (dB)", "CPBD↑", "WER↓", "ACD-C↓", "ACD-E↓", "blinks/s", "LMD↓"
    ]  # fmt: skip
    # per set, the image table and the talking table
    assert table.count("| Static frame (baseline) |") == 4 and table.count("| MAN (this model) |") == 4
    talking = next(line for line in table.splitlines() if line.startswith("| Method | expert conf."))
    assert "phoneme sync r↑" in talking and "motion r↑" in talking and "mouth interior" in talking
    assert "| MAN-optical (paper) | 0.908 |" in table and "not configured" in table
    unseen_model = next(line for line in table.splitlines() if line.startswith("| MAN (this model)"))
    assert f"{metrics['test_unseen.model.ssim']:.3f}" in unseen_model


def test_side_by_side_videos_with_audio_and_the_figures(project):
    videos = sorted((project / "data/08_reporting/evaluation_videos").glob("*.mp4"))
    assert [video.stem for video in videos] == ["spk00_clip01", "spk01_clip01"]
    facts = probe(videos[0])
    assert facts.width == 3 * 256 and facts.frame_count == 25 and facts.audio_rate == 16000
    assert facts.audio_duration_s == pytest.approx(1.0, abs=0.1)
    for folder in ("evaluation_attention", "evaluation_ear", "evaluation_mouth"):
        figures = sorted((project / "data/08_reporting" / folder).glob("*.png"))
        assert [figure.stem for figure in figures] == ["spk00_clip01", "spk01_clip01"]
        assert all(figure.stat().st_size > 5_000 for figure in figures)


def test_everything_is_logged_to_the_mlflow_run(project, metrics):
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("talking_face").experiment_id
    [run] = client.search_runs([experiment], "tags.mlflow.runName = 'evaluate'")
    assert run.data.metrics["evaluation.test_unseen.model.lmd_mouth"] == pytest.approx(metrics["test_unseen.model.lmd_mouth"])
    logged = {item.path for item in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/metrics.json", "evaluation/metrics_table.md", "evaluation/evaluation_per_clip.csv"} <= logged
    assert {"evaluation/evaluation_videos", "evaluation/evaluation_attention", "evaluation/evaluation_ear",
            "evaluation/evaluation_mouth"} <= logged
    videos = [item.path for item in client.list_artifacts(run.info.run_id, "evaluation/evaluation_videos")]
    assert len(videos) == 2


def test_evaluation_generates_exactly_what_animate_gives_users(project):
    summary = pd.read_parquet(project / "data/04_feature/feature_summary.parquet")
    path = str(project / "data/04_feature/clips/spk00_clip01.npz")
    clips = select_clips(summary, {"spk00_clip01": path}, ["test_unseen"])
    model = TalkingFaceModel.from_state(tiny_bundle(0))
    result = evaluate_model(model, clips, {"splits": ["test_unseen"]}, n_examples=1)
    real, audio, _ = load_clip_media(path)
    # The users' path: animate (blinks seeded by the clip id), then the paste-back composing each frame into
    # the photo (here the real crop).
    paste_back = PasteBack(whole_photo(real[0], model.image_size))
    frames = animate(model, real[0], audio, blink_seed=zlib.crc32(b"spk00_clip01"))
    users = np.stack([paste_back(frame) for frame in frames])
    assert np.array_equal(result.examples["spk00_clip01"].generated, users)
    assert result.per_clip.set_index("system").loc["model", "ssim"] == pytest.approx(
        summarise(result.per_clip, ["test_unseen"])["test_unseen.model.ssim"]
    )


def test_register_pipeline_registers_once_and_a_second_run_changes_nothing(project, metrics):
    manifest = pd.DataFrame({"clip_id": [clip for clip, _ in CLIPS], "split": [split for _, split in CLIPS]})
    manifest = manifest.assign(content_hash=manifest["clip_id"], speaker=manifest["clip_id"].str[:5], layout="generic")
    manifest.to_parquet(project / "data/03_primary/manifest.parquet")
    training = [str(project / "data/04_feature/clips/spk02_clip01.npz")]
    (project / "data/05_model_input/training_feature_paths.json").write_text(json.dumps(training))
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}", f"sqlite:///{project / 'mlflow.db'}")

    def registry() -> tuple:
        versions = client.search_model_versions("name='talking-face-man'")
        return [dict(version.tags) for version in versions], dict(client.get_registered_model("talking-face-man").aliases)

    run_pipeline(project, "register")
    first = json.loads((project / "data/08_reporting/promotion.json").read_text())
    [tags], aliases = registry()
    assert first["registered"] and first["version"] == 1 and aliases["challenger"] == 1
    # An untrained model keeps the photo's still mouth: the talking checks refuse it, and every check is named.
    assert not first["promoted"] and "champion" not in aliases
    names = {check["name"] for check in first["checks"]}
    assert {"expert_confidence vs real video", "phone_sync_corr vs real video", "motion_corr range", "ssim vs baseline"} <= names
    assert not next(check for check in first["checks"] if check["name"] == "motion_corr range")["passed"]
    assert tags["promotion.decision"] == first["decision"] and tags["promotion.reason"] == first["reason"]
    assert float(tags["metrics.test_unseen.model.lmd_mouth"]) == metrics["test_unseen.model.lmd_mouth"]
    assert tags["data_version"] == first["data_version"] == data_version(project)
    # The model card: the version's description and data/08_reporting/model_card.md.
    card = client.get_model_version("talking-face-man", "1").description
    assert card == (project / "data/08_reporting/model_card.md").read_text()
    table = (project / "data/08_reporting/metrics_table.md").read_text()
    model_rows = [line for line in table.splitlines() if line.startswith("| MAN (this model)")]
    assert model_rows and all(row in card for row in model_rows) and len(card) <= 5000
    assert f"data version: `{first['data_version']}`" in card and "make install" in card
    assert "- speakers: 1 (spk02)" in card and "- training clips: 1; held out: test_seen: 1 clip, test_unseen: 1 clip" in card
    assert "trained on 1 generic speaker (1 clip)" in card

    before = registry()
    run_pipeline(project, "register")
    second = json.loads((project / "data/08_reporting/promotion.json").read_text())
    assert not second["registered"] and second["version"] == 1 and registry() == before


def test_summary_skips_undefined_values_and_never_writes_non_numbers():
    per_clip = pd.DataFrame(
        [
            {"clip_id": "a", "split": "test_unseen", "system": "model", "lmd_mouth": 2.0, "cpbd": np.nan, "wer": None},
            {"clip_id": "b", "split": "test_unseen", "system": "model", "lmd_mouth": np.nan, "cpbd": np.nan, "wer": None},
            {"clip_id": "b", "split": "test_unseen", "system": "baseline", "lmd_mouth": 4.0, "cpbd": 0.5, "wer": None},
        ]
    )
    summary = summarise(per_clip, ["test_unseen", "test_seen"])
    assert summary["test_unseen.model.lmd_mouth"] == 2.0 and summary["test_unseen.baseline.cpbd"] == 0.5
    assert "test_unseen.model.cpbd" not in summary and not any(key.endswith(".wer") for key in summary)
    assert summary["test_unseen.n_clips"] == 2 and summary["test_seen.n_clips"] == 0
