"""A run stopped by a data check ends with one line naming the check and its complete report, no traceback:
`kedro run --pipeline=ingest` on 3 good clips beside 4 bad kinds (default threshold), as a user runs it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from talking_face.checks import DataCheckError
from talking_face.hooks import report_path
from talking_face.media.video import write_video
from tests.dvc_project import run
from tests.project import make_project


def clip(path, seconds: float = 1.5, audio: bool = True):
    frames = np.stack([np.full((96, 96, 3), (index * 9) % 256, np.uint8) for index in range(int(seconds * 25))])
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * 16000)) / 16000)).astype(np.float32)
    return write_video(path, frames, fps=25, audio=tone if audio else None, audio_rate=16000)


def test_failing_ingest_ends_in_one_line_naming_the_complete_report(tmp_path):
    project = make_project(tmp_path)
    raw = project / "data/01_raw/corpus"
    for speaker in ("anna", "ben", "cleo"):
        clip(raw / speaker / "good.mp4")
    (raw / "anna").joinpath("empty.mp4").touch()
    (raw / "ben" / "notes.mp4").write_text("not a video\n")
    clip(raw / "cleo" / "silent.mp4", audio=False)
    clip(raw / "cleo" / "short.mp4", seconds=0.6)

    result = run(project, "kedro", "run", "--pipeline=ingest", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "was closed because of an error" not in output
    report = "data/08_reporting/rejected_clips.csv"
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: data check 'ingest.max_rejected_fraction' failed: 4 of 7 clips rejected (57%), above the allowed "
        f"25%; see {report}"
    )
    assert output.count(report) == 1
    rejected = pd.read_csv(project / report)
    assert sorted(rejected["clip_id"]) == ["anna_empty", "ben_notes", "cleo_short", "cleo_silent"]
    assert rejected["reason"].str.len().gt(0).all()
    assert sorted(rejected["path"]) == sorted(f"data/01_raw/corpus/{name}" for name in (
        "anna/empty.mp4", "ben/notes.mp4", "cleo/short.mp4", "cleo/silent.mp4"))  # relative to the project


def test_other_errors_keep_their_traceback(tmp_path):
    project = make_project(tmp_path)
    result = run(project, "kedro", "run", "--pipeline=ingest", "--params=ingest.raw_dir=no/such/folder", check=False)
    assert result.returncode != 0 and "Traceback" in result.stdout + result.stderr


def test_the_report_is_named_by_its_file_through_wrapping_datasets():
    from kedro.io import DataCatalog

    catalog = DataCatalog.from_config({
        "wrapped": {"type": "talking_face.datasets.relative.RelativePathsDataset", "fields": ["path"],
                    "dataset": {"type": "pandas.CSVDataset", "filepath": "data/08_reporting/x.csv"}},
    })
    assert report_path(catalog, "wrapped") == "data/08_reporting/x.csv"
    assert report_path(catalog, "not_an_entry") == "not_an_entry"
    error = DataCheckError("features", "no clip\n passed", "wrapped")
    assert error.line() == "data check 'features' failed: no clip passed; see wrapped"
