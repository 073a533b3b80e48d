"""`talking-face generate` end to end (sample data and a real GRID speaker), its one-line errors on bad
input, and the batch `generate` pipeline skipping bad rows."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from talking_face.cli import main
from talking_face.media.audio import probe_audio, read_audio
from talking_face.media.video import probe, read_frames
from tests.generation_inputs import photo, speech, untrained_bundle, write_audio, write_image
from tests.project import make_project, run_pipeline


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    gradient = np.repeat(np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None], 240, 0).repeat(3, 2)
    (folder / "notes.jpg").write_text("not an image")
    (folder / "noise.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    return {
        "model": untrained_bundle(folder / "model.pt"),
        "photo": write_image(folder / "face.jpg", photo(320)),
        "speech": write_audio(folder / "speech.mp3", speech(2.0), stereo=True),  # 44.1 kHz stereo mp3
        "gradient": write_image(folder / "gradient.png", gradient),
        "notes": folder / "notes.jpg",
        "noise": folder / "noise.wav",
        "silent": write_audio(folder / "silent.wav", np.zeros(32000, np.float32)),
        "empty": write_audio(folder / "empty.wav", np.zeros(0, np.float32)),
    }


def generate(*args: str):
    return CliRunner().invoke(main, ["generate", "--quiet", *args])


def assert_talking_video(path: Path, seconds: float, size: tuple[int, int]) -> None:
    info = probe(path)
    assert info.fps == 25 and not info.variable_frame_rate
    assert info.frame_count == math.ceil(seconds * 25 - 1e-6)
    assert (info.width, info.height) == size
    assert info.duration_s == pytest.approx(seconds, abs=0.04)
    assert info.audio_channels == 1 and info.audio_duration_s == pytest.approx(seconds, abs=0.07)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"


def test_generate_on_the_sample_photo_pastes_the_face_back(inputs, tmp_path):
    out = tmp_path / "out.mp4"
    result = generate("--image", str(inputs["photo"]), "--audio", str(inputs["speech"]), "--out", str(out),
                      "--model", str(inputs["model"]))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_talking_video(out, 2.0, (320, 320))
    frames, _ = read_frames(out)
    # Outside the face's crop box the photo is untouched (up to H.264); inside, the model's face.
    original = photo(320).astype(float)
    assert np.abs(frames[10, :, :30].astype(float) - original[:, :30]).mean() < 4


def test_generate_without_paste_back_gives_the_crop(inputs, tmp_path):
    out = tmp_path / "crop.mp4"
    result = generate("--image", str(inputs["photo"]), "--audio", str(inputs["speech"]), "--out", str(out),
                      "--model", str(inputs["model"]), "--no-paste-back")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_talking_video(out, 2.0, (64, 64))


def test_generate_on_a_real_grid_frame_with_its_speech(grid_dir, inputs, tmp_path):
    clip = sorted(grid_dir.glob("*.mpg"))[0]
    frame = write_image(tmp_path / "grid.png", read_frames(clip)[0][0])
    out = tmp_path / "grid.mp4"
    result = generate("--image", str(frame), "--audio", str(clip), "--out", str(out), "--model", str(inputs["model"]))
    assert result.exit_code == 0, result.output
    seconds = len(read_audio(clip, 16000)) / 16000
    assert seconds == pytest.approx(probe_audio(clip).duration_s, abs=0.05)
    assert_talking_video(out, seconds, (360, 288))


BAD_INPUTS = {
    "no face": ("gradient", "speech", "model", "no face found"),
    "unreadable image": ("notes", "speech", "model", "not a readable image"),
    "missing image": ("missing", "speech", "model", "does not exist"),
    "unreadable audio": ("photo", "noise", "model", "not a readable media file"),
    "silent audio": ("photo", "silent", "model", "silent"),
    "empty audio": ("photo", "empty", "model", "no samples|empty"),
    "missing model file": ("photo", "speech", "missing", "no such model file"),
    "model file that is no model": ("photo", "speech", "notes", "not a talking-face model"),
    "model folder that is no MLflow model": ("photo", "speech", "folder", "not an MLflow model directory"),
    "registry without the model": ("photo", "speech", "models:/talking-face-man@champion", "no MLflow tracking database"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_with_one_line_and_no_output(case, inputs, tmp_path, monkeypatch):
    image, audio, model, problem = BAD_INPUTS[case]
    monkeypatch.chdir(tmp_path)  # the default registry is ./mlflow.db, absent here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    paths = {**inputs, "missing": tmp_path / "missing.file", "folder": tmp_path}
    out = tmp_path / "videos" / "out.mp4"
    result = generate("--image", str(paths[image]), "--audio", str(paths[audio]), "--out", str(out),
                      "--model", str(paths.get(model, model)))  # fmt: skip
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert re.search(problem, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
    assert not (tmp_path / "mlflow.db").exists()


def test_batch_generation_skips_and_reports_bad_rows(inputs, tmp_path):
    project = make_project(tmp_path)
    shutil.copy(inputs["model"], project / "data/06_models/talking_face_model.pt")
    requests = pd.DataFrame(
        [
            {"image": str(inputs["photo"]), "audio": str(inputs["speech"]), "output": "data/07_model_output/a.mp4"},
            {"image": str(inputs["gradient"]), "audio": str(inputs["speech"]), "output": "data/07_model_output/b.mp4"},
            {"image": str(inputs["photo"]), "audio": str(inputs["silent"]), "output": "data/07_model_output/c.mp4"},
            {"image": str(inputs["photo"]), "audio": "", "output": "data/07_model_output/d.mp4"},
            {"image": str(inputs["photo"]), "audio": str(inputs["speech"]), "output": "data/07_model_output/a.mp4"},
        ]
    )
    requests.to_csv(project / "data/01_raw/generate_requests.csv", index=False)
    run_pipeline(project, "generate")
    report = pd.read_csv(project / "data/08_reporting/generate_report.csv", keep_default_na=False)
    assert report["status"].tolist() == ["ok", "skipped", "skipped", "skipped", "skipped"]
    assert report["row"].tolist() == [0, 1, 2, 3, 4]
    reasons = report["reason"].tolist()
    assert reasons[0] == "" and "no face found" in reasons[1] and "silent" in reasons[2]
    assert "audio" in reasons[3] and "already written by row 0" in reasons[4]
    assert_talking_video(project / "data/07_model_output/a.mp4", 2.0, (320, 320))
    assert sorted(p.name for p in (project / "data/07_model_output").iterdir()) == ["a.mp4"]
