"""`sample_data` -> `ingest` -> `features` through Kedro sessions, as `kedro run` does them (one Ray start)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from talking_face.datasets.transcribed import phonemes_path
from talking_face.features.phonemes import OPENNESS
from talking_face.features.schema import FEATURE_KEYS
from tests.project import make_project, run_pipeline

SMALL_SAMPLE = {"sample_data": {"n_speakers": 2, "clips_per_speaker": 2, "seconds": 1.6}}
SMALL_FEATURES = {"features": {"extract": {"crop_size": 48}, "num_cpus": 2, "n_panels": 2}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = make_project(tmp_path_factory.mktemp("project"))
    run_pipeline(folder, "sample_data", SMALL_SAMPLE)
    run_pipeline(folder, "ingest")
    run_pipeline(folder, "features", SMALL_FEATURES)
    return folder


def test_every_sample_clip_gets_a_valid_feature_file(project):
    manifest = pd.read_parquet(project / "data/03_primary/manifest.parquet")
    summary = pd.read_parquet(project / "data/04_feature/feature_summary.parquet")
    rejected = pd.read_csv(project / "data/08_reporting/feature_rejected_clips.csv")
    assert rejected.empty, rejected.to_string()
    assert sorted(summary["clip_id"]) == sorted(manifest["clip_id"])
    assert (summary["crop_size"] == 48).all() and summary["shapes_ok"].all()
    assert set(summary["split"]) == set(manifest["split"])

    with np.load(project / "data/04_feature/clips" / f"{manifest['clip_id'].iloc[0]}.npz") as record:
        assert set(FEATURE_KEYS) <= set(record.files)
        n_frames = len(record["frames"])
        assert n_frames == pytest.approx(40, abs=1)  # 1.6 s at 25 fps
        assert all(len(record[key]) == n_frames for key in ("landmarks", "heatmaps", "flow", "mel", "pitch", "energy"))
    panels = sorted((project / "data/08_reporting/feature_panels").glob("*.png"))
    assert len(panels) == 2 and all(panel.stat().st_size > 20_000 for panel in panels)


def test_the_spoken_sentences_are_voiced_and_lip_motion_shows_in_the_flow(project):
    summary = pd.read_parquet(project / "data/04_feature/feature_summary.parquet")
    assert (summary["voiced_fraction"] > 0.2).all()
    assert (summary["flow_max"] > 0.1).all()


def test_every_sample_clip_has_its_phoneme_timing_beside_it(project):
    videos = sorted((project / "data/01_raw/sample").glob("*/*.mp4"))
    assert len(videos) == 4
    for video in videos:
        said = pd.read_csv(phonemes_path(video))
        assert len(said) > 5 and set(said["phoneme"]) <= set(OPENNESS), video
        assert (said["end_s"] > said["start_s"]).all() and said["end_s"].max() <= 1.6
