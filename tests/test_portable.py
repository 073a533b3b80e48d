"""The project after `dvc repro` (tests/dvc_project.py), copied with its data and DVC cache to another folder:
DVC finds it up to date, no dataset names the old folder, and `kedro run --pipeline=evaluate` there reads the
moved files and rewrites its data outputs byte for byte, leaving every stage up to date."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dvc.repo import Repo

from talking_face.datasets.relative import RelativePathsDataset
from tests.dvc_project import run

pytestmark = pytest.mark.slow

WITH_PATHS = [  # what the datasets that hold file paths write
    "data/03_primary/manifest.parquet",
    "data/05_model_input/training_feature_paths.json",
    "data/05_model_input/evaluation_clips.json",
    "data/08_reporting/rejected_clips.csv",
    "data/08_reporting/feature_rejected_clips.csv",
]


def test_a_moved_copy_is_up_to_date_and_evaluates_without_rerunning_a_stage(reproduced_project, tmp_path):
    original = reproduced_project.path
    moved = tmp_path / "another" / "checkout"
    shutil.copytree(original, moved, symlinks=True)
    assert "Data and pipelines are up to date" in run(moved, "dvc", "status").stdout

    for name in WITH_PATHS:
        assert str(original).encode() not in (moved / name).read_bytes(), f"{name} names the original folder"
    stored = {"type": "pandas.ParquetDataset", "filepath": str(moved / "data/03_primary/manifest.parquet")}
    manifest = RelativePathsDataset(stored, ["path", "audio_path"], root=str(moved)).load()
    assert all((moved / "data/01_raw").resolve() in Path(path).parents and Path(path).is_file() for path in manifest["path"])

    lock = (moved / "dvc.lock").read_bytes()
    run(moved, "kedro", "run", "--pipeline=evaluate")
    with Repo(str(moved)) as repo:
        status = repo.status()
    # Every stage before it stays up to date and its data (clips, metrics, table) is byte for byte what
    # dvc.lock holds; only its mp4s may differ (x264 output is not bit-reproducible from run to run).
    changed = {stage.split(":")[-1]: change for stage, changes in status.items() for change in changes}
    assert set(changed) <= {"evaluate"}, status
    assert set(changed.get("evaluate", {}).get("changed outs", {})) <= {"data/08_reporting/evaluation_videos"}, status
    assert (moved / "dvc.lock").read_bytes() == lock
