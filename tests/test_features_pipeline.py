"""The `features` Kedro pipeline on real GRID clips in a temporary data folder, with one local Ray instance.

Also the atomic npz writes it relies on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, DatasetError
from kedro.runner import SequentialRunner

from talking_face.datasets.npz import NpzDataset, NpzKeysDataset
from talking_face.features.compact import decode_clip
from talking_face.features.schema import FEATURE_KEYS, RECORD_KEYS
from talking_face.features.shards import shard_rows
from talking_face.media.video import write_video
from talking_face.pipelines.features.pipeline import create_pipeline

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"


@pytest.fixture(scope="module")
def manifest(grid_dir, tmp_path_factory):
    """Two GRID clips, a noise clip with no face, and a GRID video paired with silent audio."""
    folder = tmp_path_factory.mktemp("clips")
    noise = (np.random.default_rng(3).random((25, 96, 128, 3)) * 255).astype(np.uint8)
    silent = write_video(folder / "noise.mp4", noise, fps=25, audio=np.zeros(16000, np.float32))
    rows = [
        ("grid_bbaf2n", grid_dir / "bbaf2n.mpg", grid_dir / "bbaf2n.mpg"),
        ("grid_lbbc2a", grid_dir / "lbbc2a.mpg", grid_dir / "lbbc2a.mpg"),
        ("noise", silent, silent),
        ("silent_speaker", grid_dir / "pwij3p.mpg", silent),
    ]
    records = []
    for clip_id, video, audio in rows:
        digest = hashlib.sha256(Path(video).read_bytes() + (Path(audio).read_bytes() if audio != video else b""))
        records.append({
            "clip_id": clip_id, "speaker": clip_id, "path": str(video), "audio_path": str(audio),
            "content_hash": digest.hexdigest(), "duration_s": 3.0, "split": "train",
        })
    return pd.DataFrame(records)


def feature_params(**extract) -> dict:
    params = yaml.safe_load((CONF / "parameters_features.yml").read_text())["features"]
    params["extract"].update({"crop_size": 32, **extract})
    params.update(num_cpus=2, n_panels=1)
    return params


def run_features(root: Path, manifest: pd.DataFrame, params: dict) -> DataCatalog:
    """Runs the pipeline with the project's catalog entries moved under `root`; returns the catalog."""
    config = yaml.safe_load((CONF / "catalog_features.yml").read_text())
    config["feature_files"] = yaml.safe_load((CONF / "catalog_train.yml").read_text())["feature_files"]
    for entry in config.values():
        for key in ("path", "filepath"):
            if key in entry:
                entry[key] = str(root / entry[key])
    catalog = DataCatalog.from_config(config)
    catalog["manifest"] = manifest
    catalog["params:features"] = {**params, "shards": {**params["shards"], "uri": str(root / params["shards"]["uri"])}}
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def stamps_of(folder: Path) -> dict[str, int]:
    return {str(file): file.stat().st_mtime_ns for file in folder.rglob("*") if file.is_file()}


def stamps(folder: Path) -> dict[str, int]:
    return {file.stem: file.stat().st_mtime_ns for file in folder.glob("*.npz")}


def test_pipeline_extracts_validates_skips_and_recomputes(local_ray, manifest, tmp_path):
    clips = tmp_path / "data/04_feature/clips"
    catalog = run_features(tmp_path, manifest, feature_params())
    assert set(stamps(clips)) == set(manifest["clip_id"])

    summary = catalog.load("feature_summary")
    assert sorted(summary["clip_id"]) == ["grid_bbaf2n", "grid_lbbc2a"]
    assert summary["shapes_ok"].all() and (summary["crop_size"] == 32).all()
    rejected = catalog.load("feature_rejected_clips").set_index("clip_id")
    assert rejected.loc["noise", "stage"] == "features"
    assert "no face found" in rejected.loc["noise", "reason"]
    assert rejected.loc["silent_speaker", "stage"] == "feature_validation"
    assert "voiced fraction 0.00" in rejected.loc["silent_speaker", "reason"]
    assert [png.name for png in (tmp_path / "data/08_reporting/feature_panels").iterdir()] == ["grid_bbaf2n.png"]

    record = catalog.load("feature_clips")["grid_lbbc2a"]()
    assert set(FEATURE_KEYS) | {"params_hash", "content_hash", "summary"} == set(record)
    assert record["frames"].shape[1:] == (32, 32, 3) and len(record["flow"]) == len(record["frames"])

    # The accepted clips, and only they, in the training shards, which decode to the files' arrays.
    index = catalog.load("feature_shards")
    assert [clip["clip_id"] for shard in index["shards"] for clip in shard["clips"]] == ["grid_bbaf2n", "grid_lbbc2a"]
    decoded = decode_clip(list(shard_rows(index["uri"], index["shards"][0]))[1])
    np.testing.assert_array_equal(decoded["heatmaps"], record["heatmaps"])

    # Same parameters and content: nothing is rewritten.
    before = stamps(clips)
    shard_files = stamps_of(tmp_path / "data/04_feature/shards")
    run_features(tmp_path, manifest, feature_params())
    assert stamps(clips) == before and stamps_of(tmp_path / "data/04_feature/shards") == shard_files
    report = catalog.load("feature_validation_report")
    assert report["extracted_now"] == 0 and report["accepted"] == 2

    # A killed run: one file missing and a temp file left behind; the next run redoes only that clip.
    (clips / "grid_bbaf2n.npz").unlink()
    (clips / ".grid_bbaf2n.npz.abc123.part").write_bytes(b"half")
    run_features(tmp_path, manifest, feature_params())
    after = stamps(clips)
    assert {clip for clip in after if after[clip] != before.get(clip)} == {"grid_bbaf2n"}
    assert catalog.load("feature_validation_report")["extracted_now"] == 1

    # A changed parameter recomputes every clip.
    run_features(tmp_path, manifest, feature_params(heatmap_sigma=2.0))
    changed = stamps(clips)
    assert all(changed[clip] != after[clip] for clip in after)
    hashes = set(NpzKeysDataset(str(clips), keys=["params_hash"]).load()["params_hash"])
    assert len(hashes) == 1 and hashes != {str(record["params_hash"])}


def test_npz_save_is_atomic(tmp_path):
    target = tmp_path / "clip.npz"
    dataset = NpzDataset(str(target))
    dataset.save({"a": np.arange(3), "params_hash": "abc"})
    with pytest.raises(DatasetError, match="Object arrays"):  # refused half-way through writing the file
        dataset.save({"a": np.arange(5), "bad": np.array([{"x": 1}], dtype=object)})
    assert list(tmp_path.iterdir()) == [target]  # no temp file left, the old file intact
    loaded = dataset.load()
    assert loaded["a"].tolist() == [0, 1, 2] and str(loaded["params_hash"]) == "abc"
    assert set(NpzDataset(str(target), load_args={"keys": ["params_hash", "absent"]}).load()) == {"params_hash"}


def test_keys_table_of_a_missing_folder_is_empty(tmp_path):
    table = NpzKeysDataset(str(tmp_path / "none"), keys=list(RECORD_KEYS)).load()
    assert len(table) == 0 and list(table.columns) == ["id", *RECORD_KEYS]
