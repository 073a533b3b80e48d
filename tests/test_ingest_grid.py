"""Ingestion of the real GRID clips in ../shared/data/grid (a flat folder of MPEG-1 clips and speakers.csv)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from talking_face.ingest.discover import discover_clips, read_speaker_map
from talking_face.ingest.probe import probe_clips
from talking_face.ingest.split import assign_splits
from talking_face.validation.expectations import validate_manifest

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf/base/parameters_ingest.yml").read_text())["ingest"]


@pytest.fixture(scope="module")
def grid_ingest(grid_dir):
    candidates, not_clips = discover_clips(grid_dir, grid_dir / "speakers.csv")
    probed, unreadable = probe_clips(candidates, progress=False)
    accepted, rejected, report = validate_manifest(probed, PARAMS)
    split = assign_splits(
        accepted, PARAMS["test_unseen_speaker_fraction"], PARAMS["test_seen_clip_fraction"], PARAMS["seed"]
    )
    return {"not_clips": not_clips + unreadable, "rejected": rejected, "report": report, "manifest": split}


def test_every_grid_clip_is_found_with_its_mapped_speaker(grid_dir, grid_ingest):
    speakers = read_speaker_map(grid_dir / "speakers.csv")
    manifest = grid_ingest["manifest"]
    assert grid_ingest["not_clips"] == [] and grid_ingest["rejected"].empty
    assert len(manifest) == len(list(grid_dir.glob("*.mpg"))) == 8
    assert manifest["speaker"].nunique() == len(set(speakers.values())) == 7
    assert dict(zip(manifest["path"].map(lambda path: Path(path).stem), manifest["speaker"])) == speakers
    assert set(manifest["layout"]) == {"grid"} and manifest["clip_id"].is_unique
    assert grid_ingest["report"]["success"]


def test_grid_stream_facts(grid_ingest):
    """The GRID README: 3 s MPEG-1 at 360x288 and 25 fps, mp2 audio at 44.1 kHz."""
    manifest = grid_ingest["manifest"]
    assert (manifest["fps"] == 25.0).all()
    assert (manifest["width"] == 360).all() and (manifest["height"] == 288).all()
    assert manifest["duration_s"].between(2.9, 3.1).all() and manifest["audio_duration_s"].between(2.9, 3.1).all()
    assert (manifest["frame_count"] == (manifest["duration_s"] * 25).round()).all()
    assert (manifest["audio_rate"] == 44100).all() and (manifest["audio_channels"] >= 1).all()
    assert manifest["av_diff_s"].abs().max() < 0.1
    # 44.1 kHz must be resampled to 16 kHz; 25 fps constant-rate MPEG-1 needs no frame-rate fix.
    flags = manifest["needs"].str.split(";")
    assert flags.map(lambda needs: "audio_resample" in needs).all()
    assert not flags.map(lambda needs: "vfr" in needs or "fps_resample" in needs).any()
    assert manifest["content_hash"].is_unique


def test_grid_split_is_sensible(grid_ingest):
    manifest: pd.DataFrame = grid_ingest["manifest"]
    speakers = manifest.groupby("split")["speaker"].agg(set)
    assert len(speakers["test_unseen"]) >= 1 and not speakers["test_unseen"] & speakers["train"]
    # grid_c is the one speaker with two clips: one stays in training, the other is the seen-speaker test.
    assert speakers["test_seen"] == {"grid_c"} and "grid_c" in speakers["train"]
    assert (manifest["split"] == "train").sum() >= len(manifest) // 2
