"""The foundation end to end: `sample_data` then `ingest` through Kedro sessions, as `make train` runs them."""

from __future__ import annotations

import pandas as pd
import pytest

from talking_face.media.video import probe
from tests.project import make_project, run_pipeline

SMALL_SAMPLE = {"sample_data": {"n_speakers": 3, "clips_per_speaker": 2, "seconds": 1.6}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = make_project(tmp_path_factory.mktemp("project"))
    run_pipeline(folder, "sample_data", SMALL_SAMPLE)
    run_pipeline(folder, "ingest")
    return folder


def test_sample_data_lands_as_a_corpus_of_mp4s(project):
    clips = sorted((project / "data/01_raw/sample").glob("*/*.mp4"))
    assert len(clips) == 6
    assert len({clip.parent.name for clip in clips}) == 3
    facts = probe(clips[0])
    assert facts.fps == 25 and facts.audio_rate > 0 and facts.duration_s == pytest.approx(1.6, abs=0.1)
    assert (project / "data/08_reporting/sample_contact_sheet.png").stat().st_size > 10_000


def test_ingest_accepts_every_sample_clip_and_splits_by_speaker(project):
    manifest = pd.read_parquet(project / "data/03_primary/manifest.parquet")
    assert len(manifest) == 6 and manifest["clip_id"].is_unique
    assert set(manifest["speaker"]) == {"spk01", "spk02", "spk03"}
    unseen = set(manifest.loc[manifest["split"] == "test_unseen", "speaker"])
    trained = set(manifest.loc[manifest["split"] == "train", "speaker"])
    assert unseen and not unseen & trained
    rejected = pd.read_csv(project / "data/08_reporting/rejected_clips.csv")
    assert rejected.empty
