"""`talking-face generate` end to end (sample data and a real GRID speaker), the photo crop and paste-back,
every audio format, the one-line errors on bad input, and the batch `generate` pipeline skipping bad rows."""

from __future__ import annotations

import logging
import math
import re
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from talking_face.cli import main
from talking_face.evaluation import sync
from talking_face.evaluation.face_track import track_landmarks
from talking_face.face.detect import detect_faces
from talking_face.features.phonemes import speech_openness
from talking_face.features.eyes import DEFAULT_BLINK_RATE
from talking_face.media.audio import probe_audio, read_audio
from talking_face.media.errors import MediaError
from talking_face.media.video import probe, read_frames
from talking_face.pretrained import SHIPPED_MODEL
from talking_face.serving.animate import GeneratedFrame
from talking_face.serving.photo import PasteBack, face_photo, find_face, read_image
from talking_face.serving.video import read_speech
from tests.generation_inputs import AUDIO_FORMATS, photo, speech, untrained_bundle, write_audio, write_image
from tests.project import make_project, run_pipeline
from tests.readme_commands import trained_project


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


def test_without_a_model_generate_uses_the_champion_else_the_shipped_pretrained_model(inputs, tmp_path, monkeypatch):
    from talking_face.serving import resolve

    shipped = tmp_path / "shipped" / SHIPPED_MODEL.name
    shipped.parent.mkdir()
    shutil.copy(inputs["model"], shipped)
    monkeypatch.setattr(resolve, "SHIPPED_MODEL", shipped)  # a small stand-in for the package's model file
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # no mlflow.db here: no registry, so no champion
    out = tmp_path / "shipped.mp4"
    result = generate("--image", str(inputs["photo"]), "--audio", str(inputs["speech"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    said = result.stderr.strip().splitlines()
    assert len(said) == 1 and said[0].startswith(f"model: the pretrained model {SHIPPED_MODEL.name}"), said
    assert_talking_video(out, 2.0, (320, 320))
    assert not (tmp_path / "mlflow.db").exists()  # looking for a champion created no registry
    # Neither a champion nor a shipped model: one line, no output.
    monkeypatch.setattr(resolve, "SHIPPED_MODEL", tmp_path / "absent.pt")
    result = generate("--image", str(inputs["photo"]), "--audio", str(inputs["speech"]), "--out", str(tmp_path / "no.mp4"))
    assert result.exit_code == 1 and "no champion" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no.mp4").exists()
    # A user who trained and promoted a model gets it instead.
    project = trained_project(tmp_path / "project", inputs["model"])
    monkeypatch.chdir(project)
    result = generate("--image", str(inputs["photo"]), "--audio", str(inputs["speech"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == ["model: models:/talking-face-man@champion"]


@pytest.mark.slow
def test_the_shipped_model_is_the_default_and_a_real_photo_speaks_with_it(inputs, grid_dir, tmp_path, monkeypatch):
    """The package's own model (no stand-in): used when nothing is configured, and the portrait's mouth
    opens and closes with the recorded speech of a GRID speaker it never heard, in step with the phonemes
    pocketsphinx hears in it."""
    from talking_face.serving.resolve import default_model

    assert SHIPPED_MODEL.is_file() and SHIPPED_MODEL.stat().st_size < 30e6
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    model, which = default_model()
    assert SHIPPED_MODEL.name in which and model.mouth is not None and model.eyelids
    samples = read_audio(grid_dir / "pwij3p.mpg", 16000)
    audio = write_audio(tmp_path / "sentence.wav", samples)
    out = tmp_path / "shipped.mp4"
    result = generate("--image", str(inputs["photo"]), "--audio", str(audio), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[0].startswith(f"model: the pretrained model {SHIPPED_MODEL.name}")
    frames, _ = read_frames(out)
    opening = sync.mouth_opening(track_landmarks(frames).landmarks)
    asked = speech_openness(samples, len(frames), 16000, 25.0)
    assert opening.max() - opening.min() > 0.15  # the mouth opens ...
    assert np.corrcoef(opening, asked)[0, 1] > 0.4  # ... when the words ask for it


def test_generate_passes_the_blink_rate_and_mouth_strength_on_and_rejects_bad_ones(inputs, tmp_path, monkeypatch):
    from talking_face.serving import video

    calls, animate = [], video.animate

    def recording_animate(model, crop, audio, blink_rate, mouth_strength):
        calls.append((blink_rate, mouth_strength))
        return animate(model, crop, audio, blink_rate, mouth_strength=mouth_strength)

    monkeypatch.setattr(video, "animate", recording_animate)
    paths = ["--image", str(inputs["photo"]), "--audio", str(inputs["speech"]), "--model", str(inputs["model"])]
    for options in (["--no-blinks"], ["--blink-rate", "0.5", "--mouth-strength", "0.25"], []):
        result = generate(*paths, "--out", str(tmp_path / "out.mp4"), "--no-paste-back", *options)
        assert result.exit_code == 0, result.output
    assert calls == [(0.0, None), (0.5, 0.25), (DEFAULT_BLINK_RATE, None)]  # None: the model's own strength
    bad = ((["--no-blinks", "--blink-rate", "0.3"], "contradict"), (["--blink-rate", "-1"], "-1"),
           (["--mouth-strength", "1.5"], "1.5"))  # fmt: skip
    for options, message in bad:
        result = generate(*paths, "--out", str(tmp_path / "bad.mp4"), *options)
        assert result.exit_code == 2 and message in result.output and not (tmp_path / "bad.mp4").exists()


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


def test_crop_is_centred_on_the_face_like_the_training_crops():
    image, margin = photo(400), 0.3
    crop = face_photo(image, 128, margin).crop
    boxes = detect_faces(cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC))
    assert len(boxes) >= 1
    x0, y0, x1, y1 = boxes[0] / 256
    assert abs((x0 + x1) / 2 - 0.5) < 0.08 and abs((y0 + y1) / 2 - 0.5) < 0.1
    assert (x1 - x0) == pytest.approx(1 / (1 + 2 * margin), rel=0.2)


def generated(painted: np.ndarray, mask: np.ndarray | float = 1.0, motion: np.ndarray | None = None) -> GeneratedFrame:
    """A generated frame with the given painted pixels, mask (1: the direct head) and motion (crop pixels)."""
    side = painted.shape[0]
    mask = np.broadcast_to(np.float32(mask), (side, side)).astype(np.float32)
    motion = np.zeros((side, side, 2), np.float32) if motion is None else motion.astype(np.float32)
    return GeneratedFrame(painted, np.zeros((side, side), np.float32), mask, motion, painted)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return math.inf if error == 0 else 10 * math.log10(255**2 / error)


def test_full_resolution_paste_back_keeps_the_photo_outside_the_mask():
    image = photo(512)
    face = face_photo(image, 64, 0.3)
    # A soft mask on the mouth; noise as the painted pixels, so any leak outside the mask shows.
    mask = np.zeros((64, 64), np.float32)
    cv2.ellipse(mask, (32, 47), (11, 6), 0, 0, 360, 1.0, thickness=-1)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    pasted = PasteBack(face)(generated(noise, mask))
    x0, y0, x1, y1 = (int(v) for v in face.box)
    side, scale = x1 - x0, (x1 - x0) / 64
    on = np.zeros(image.shape[:2], np.uint8)
    on[y0:y1, x0:x1] = cv2.resize(mask, (side, side)) > 0.01
    dilated = cv2.dilate(on, np.ones((2 * int(3 * scale) + 1,) * 2, np.uint8)).astype(bool)
    assert psnr(pasted[~dilated], image[~dilated]) > 40
    assert dilated.mean() < 0.1  # the mask's region is a small part of the photo
    inside = cv2.resize(mask, (side, side)) > 0.9
    assert np.abs(pasted[y0:y1, x0:x1][inside].astype(float) - image[y0:y1, x0:x1][inside]).mean() > 30  # painted


def test_paste_back_keeps_the_photos_detail_where_the_mask_is_on_but_nothing_is_painted():
    image = photo(512)
    face = face_photo(image, 64, 0.3)
    x0, y0, x1, y1 = (int(v) for v in face.box)
    side = x1 - x0
    mask = np.zeros((64, 64), np.float32)
    mask[22:46, 16:48] = 1.0  # near the centre, where the paste-back's feathered ellipse is 1
    inside = cv2.resize(cv2.erode(mask, np.ones((5, 5))), (side, side), interpolation=cv2.INTER_NEAREST) > 0
    box = (slice(y0, y1), slice(x0, x1))
    unchanged = PasteBack(face)(generated(face.crop, mask))  # the painted pixels are the crop itself
    upsampled = cv2.resize(face.crop, (side, side), interpolation=cv2.INTER_CUBIC)
    assert psnr(unchanged[box][inside], image[box][inside]) > psnr(upsampled[inside], image[box][inside]) + 6
    assert psnr(unchanged[box][inside], image[box][inside]) > 35  # the 512-pixel photo, not its 64-pixel crop
    # A painted change (a dark mouth) is the model's own: none of the photo's detail shows through it.
    dark = face.crop.copy()
    dark[28:40, 22:42] = 20
    opened = PasteBack(face)(generated(dark, mask))
    mouth = cv2.resize(cv2.erode((dark[..., 0] == 20).astype(np.uint8), np.ones((3, 3))), (side, side),
                       interpolation=cv2.INTER_NEAREST) > 0  # fmt: skip
    dark_upsampled = cv2.resize(dark, (side, side), interpolation=cv2.INTER_CUBIC)
    assert np.abs(opened[box][mouth].astype(int) - dark_upsampled[mouth]).max() <= 2


def test_full_resolution_paste_back_warps_the_photo_at_its_resolution():
    image = photo(512)
    face = face_photo(image, 64, 0.3)
    x0, y0, x1, y1 = (int(v) for v in face.box)
    side = x1 - x0
    motion = np.zeros((64, 64, 2), np.float32)
    motion[..., 0] = 4 * 64 / side  # 4 photo pixels to the right, in crop pixels
    pasted = PasteBack(face)(generated(face.crop, 0.0, motion))
    # Near the face's centre the output is the sharp photo shifted by 4 pixels, not the 64-pixel crop.
    rows, cols = slice(y0 + side * 4 // 10, y1 - side * 4 // 10), slice(x0 + side * 4 // 10, x1 - side * 4 // 10)
    shifted = image[rows, cols.start + 4 : cols.stop + 4]
    assert np.abs(pasted[rows, cols].astype(int) - shifted).max() <= 1
    assert np.abs(pasted[rows, cols].astype(int) - image[rows, cols]).mean() > 2
    assert np.array_equal(pasted[: max(y0, 0)], image[: max(y0, 0)])  # outside the box nothing moves


def test_pasting_the_direct_heads_crop_back_restores_the_photo():
    image = photo(320)
    face = face_photo(image, 96, 0.3)
    pasted = PasteBack(face)(generated(face.crop))
    assert pasted.shape == image.shape and pasted.dtype == np.uint8
    x0, y0, x1, y1 = (int(v) for v in face.box)
    outside = np.ones(image.shape[:2], bool)
    outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
    assert np.array_equal(pasted[outside], image[outside])
    inside = pasted[max(y0, 0) : y1, max(x0, 0) : x1].astype(float) - image[max(y0, 0) : y1, max(x0, 0) : x1]
    assert np.abs(inside).mean() < 6  # only the 96-pixel resampling blur differs
    # A grey crop lands on the face's centre and fades out before the crop box's corners.
    grey = PasteBack(face)(generated(np.full_like(face.crop, 128)))
    centre = grey[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
    assert np.abs(centre - 128).max() <= 2
    corner = (min(max(y0 + 2, 0), 319), min(max(x0 + 2, 0), 319))
    assert np.abs(grey[corner].astype(int) - image[corner].astype(int)).max() <= 3


def test_a_face_at_the_photo_edge_is_cropped_and_pasted_back():
    image = np.ascontiguousarray(photo(320)[:, 70:])  # the crop box now reaches past the left edge
    face = face_photo(image, 64, 0.3)
    assert face.box[0] < 0
    assert PasteBack(face)(generated(face.crop)).shape == image.shape


def test_the_largest_of_several_faces_is_used_with_a_warning(caplog):
    canvas = np.full((400, 700, 3), 200, np.uint8)
    canvas[40:360, 20:340] = photo(320)
    canvas[100:300, 450:650] = photo(200)
    with caplog.at_level(logging.WARNING, logger="talking_face.serving.photo"):
        box = find_face(canvas, "two.png")
    assert box[2] < 340  # inside the big portrait
    assert "two.png: 2 faces found" in caplog.text


def test_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    from PIL import Image

    upright = photo(256)
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright)))  # as a phone stores a portrait shot
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    image = read_image(tmp_path / "phone.jpg")
    assert image.shape == upright.shape
    assert np.abs(image.astype(float) - upright).mean() < 5
    find_face(image, "phone.jpg")  # dlib's detector only finds upright faces


def test_unreadable_images_and_faceless_photos_fail_with_one_line(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    gradient = np.repeat(np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None], 200, 0).repeat(3, 2)
    cases = {
        tmp_path / "missing.png": "does not exist",
        tmp_path / "empty.png": "empty",
        tmp_path / "notes.jpg": "not a readable image",
    }
    for path, problem in cases.items():
        with pytest.raises(MediaError, match=problem) as error:
            read_image(path)
        assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
    with pytest.raises(MediaError, match="gradient.png: no face found"):
        face_photo(read_image(write_image(tmp_path / "gradient.png", gradient)), 64, 0.3, tmp_path / "gradient.png")


@pytest.mark.parametrize("suffix", sorted(AUDIO_FORMATS))
@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
def test_speech_reads_from_every_format_rate_and_layout(tmp_path, suffix, stereo):
    original = speech(2.0)
    audio = read_speech(write_audio(tmp_path / f"speech{suffix}", original, stereo=stereo), 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / 16000 == pytest.approx(2.0, abs=0.06)  # AAC and Opus add a few ms of priming
    assert np.abs(audio).max() > 0.05


def test_silent_empty_and_unreadable_audio_fail_with_one_line(tmp_path):
    silent = write_audio(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    empty = write_audio(tmp_path / "empty.wav", np.zeros(0, np.float32))
    noise = tmp_path / "noise.wav"
    noise.write_bytes(np.random.default_rng(0).bytes(4000))
    for path, problem in ((silent, "silent"), (empty, "no samples|empty"), (noise, "not a readable media file")):
        with pytest.raises(MediaError, match=problem) as error:
            read_speech(path, 16000)
        assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


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
    "registry without the model": ("photo", "speech", "models:/talking-face-man@champion", "no MLflow tracking"),
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
