"""The generation path under the CLI, the batch pipeline and MLflow serving: the fast per-frame step against
the plain generator, chunked audio analysis against the whole clip, the photo crop and paste-back, input
checks, flat memory on long audio, and the `mlflow models serve` round trip."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from talking_face.face.detect import detect_faces
from talking_face.features.audio import audio_features
from talking_face.media.audio import read_audio
from talking_face.media.errors import MediaError
from talking_face.serving import animate as animate_module
from talking_face.serving.animate import GeneratedFrame, animate, audio_chunks, frame_count, to_uint8
from talking_face.serving.bundle import TalkingFaceModel
from talking_face.serving.photo import PasteBack, face_photo, find_face, read_image
from talking_face.serving.video import read_speech, torch_threads, write_talking_video
from talking_face.training.conditioning import generator_conditioning, motion_for_generator
from talking_face.training.data import audio_conditioning, to_image_tensor
from tests.generation_inputs import AUDIO_FORMATS, photo, speech, untrained_bundle, write_audio, write_image


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return untrained_bundle(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="module")
def model(bundle) -> TalkingFaceModel:
    model = TalkingFaceModel.load(bundle)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.predictor.head.weight, std=0.05)  # the fresh flow head is all zeros: give it motion
    return model


@torch.inference_mode()
def plain_frames(model: TalkingFaceModel, crop: np.ndarray, audio: np.ndarray) -> list[GeneratedFrame]:
    """The straightforward loop: whole-clip audio features, one full generator call per frame."""
    fps, params = float(model.features["fps"]), model.features["audio"]
    n_frames = frame_count(len(audio), int(params["sample_rate"]), fps)
    clip = audio_features(audio, n_frames, fps, params)
    source = to_image_tensor(crop)[None]
    previous = deque([source] * model.context_frames, maxlen=model.context_frames)
    frames = []
    for t in range(n_frames):
        batch = {key: value[None] for key, value in audio_conditioning(clip, t, model.audio_window).items()}
        batch["source"] = source
        motion = model.predictor(torch.cat(list(previous), 1), batch["mel"])
        output = model.generator(generator_conditioning(batch, motion_for_generator(motion, model.image_size)))
        previous.append(output.image)
        frames.append(GeneratedFrame(to_uint8(output.image)[0], output.attention[0, 0].numpy()))
    return frames


def assert_same_frames(expected: list[GeneratedFrame], actual: list[GeneratedFrame]) -> None:
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual):
        # Batched calls round differently in the last float bits: a pixel may land one level off.
        assert np.abs(want.image.astype(int) - got.image.astype(int)).max() <= 1
        np.testing.assert_allclose(got.attention, want.attention, rtol=1e-4, atol=1e-4)


def test_fast_generation_matches_the_plain_generator(model, monkeypatch):
    crop = face_photo(photo(256), model.image_size, model.features["crop_margin"]).crop
    audio = speech(2.4)
    with torch_threads(1):
        expected = plain_frames(model, crop, audio)
        assert_same_frames(expected, list(animate(model, crop, audio)))
        assert len({frame.image.tobytes() for frame in expected}) > 1  # the frames do change over time
        # Small chunks and batches: chunk edges, margins and batch edges fall inside the clip.
        monkeypatch.setattr(animate_module, "CHUNK_FRAMES", 24)
        monkeypatch.setattr(animate_module, "BATCH_FRAMES", 7)
        assert_same_frames(expected, list(animate(model, crop, audio)))


def real_speech(grid_dir: Path | None) -> np.ndarray:
    if grid_dir is None:
        return speech(12.0, seed=11)
    return np.concatenate([read_audio(clip, 16000) for clip in sorted(grid_dir.glob("*.mpg"))])


@pytest.mark.parametrize("source", ["synthetic", "grid"])
def test_chunked_audio_features_match_the_whole_clip(source, request, model):
    audio = real_speech(request.getfixturevalue("grid_dir") if source == "grid" else None)
    fps, params = float(model.features["fps"]), model.features["audio"]
    n_frames = frame_count(len(audio), int(params["sample_rate"]), fps)
    whole = audio_features(audio, n_frames, fps, params)
    chunks = list(audio_chunks(audio, n_frames, fps, params, chunk_frames=60, margin=50))
    assert len(chunks) == -(-n_frames // 60)
    joined = {
        key: np.concatenate([features[key][offset : offset + count] for _, count, features, offset in chunks])
        for key in ("mel", "mfcc", "energy", "pitch", "f0")
    }
    np.testing.assert_allclose(joined["mel"], whole["mel"], atol=1e-3)
    np.testing.assert_allclose(joined["mfcc"], whole["mfcc"], atol=1e-2)
    assert np.abs(joined["energy"].astype(int) - whole["energy"].astype(int)).max() <= 1
    # pyworld's DIO looks a little beyond its frame; the margin keeps pitch levels (nearly) identical.
    assert (joined["pitch"] == whole["pitch"]).mean() > 0.98
    assert ((joined["f0"] > 0) == (whole["f0"] > 0)).mean() > 0.98


def test_crop_is_centred_on_the_face_like_the_training_crops():
    image, margin = photo(400), 0.3
    crop = face_photo(image, 128, margin).crop
    boxes = detect_faces(cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC))
    assert len(boxes) >= 1
    x0, y0, x1, y1 = boxes[0] / 256
    assert abs((x0 + x1) / 2 - 0.5) < 0.08 and abs((y0 + y1) / 2 - 0.5) < 0.1
    assert (x1 - x0) == pytest.approx(1 / (1 + 2 * margin), rel=0.2)


def test_pasting_the_crop_back_restores_the_photo():
    image = photo(320)
    face = face_photo(image, 96, 0.3)
    pasted = PasteBack(face)(face.crop)
    assert pasted.shape == image.shape and pasted.dtype == np.uint8
    x0, y0, x1, y1 = (int(v) for v in face.box)
    outside = np.ones(image.shape[:2], bool)
    outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
    assert np.array_equal(pasted[outside], image[outside])
    inside = pasted[max(y0, 0) : y1, max(x0, 0) : x1].astype(float) - image[max(y0, 0) : y1, max(x0, 0) : x1]
    assert np.abs(inside).mean() < 6  # only the 96-pixel resampling blur differs
    # A grey crop lands on the face's centre and fades out before the crop box's corners.
    grey = PasteBack(face)(np.full_like(face.crop, 128))
    centre = grey[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
    assert np.abs(centre - 128).max() <= 2
    corner = (min(max(y0 + 2, 0), 319), min(max(x0 + 2, 0), 319))
    assert np.abs(grey[corner].astype(int) - image[corner].astype(int)).max() <= 3


def test_a_face_at_the_photo_edge_is_cropped_and_pasted_back():
    image = np.ascontiguousarray(photo(320)[:, 70:])  # the crop box now reaches past the left edge
    face = face_photo(image, 64, 0.3)
    assert face.box[0] < 0
    assert PasteBack(face)(face.crop).shape == image.shape


def test_the_largest_of_several_faces_is_used_with_a_warning(caplog):
    canvas = np.full((400, 700, 3), 200, np.uint8)
    canvas[40:360, 20:340] = photo(320)
    canvas[100:300, 450:650] = photo(200)
    with caplog.at_level(logging.WARNING, logger="talking_face.serving.photo"):
        box = find_face(canvas, "two.png")
    assert box[2] < 340  # inside the big portrait
    assert "two.png: 2 faces found" in caplog.text


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


def test_an_interrupted_generation_leaves_no_file(tmp_path, model):
    out = tmp_path / "out.mp4"
    audio = speech(2.0)

    def interrupted():
        for index, frame in enumerate(animate(model, np.zeros((64, 64, 3), np.uint8), audio)):
            if index == 10:
                raise KeyboardInterrupt
            yield frame

    with pytest.raises(KeyboardInterrupt):
        write_talking_video(out, interrupted(), audio, 16000, 25)
    assert list(tmp_path.iterdir()) == []


def test_memory_stays_flat_for_long_audio(tmp_path):
    psutil = pytest.importorskip("psutil")
    from talking_face.serving.video import generate_video

    # A small network keeps this quick; what is measured is the streaming around it.
    small = TalkingFaceModel.load(untrained_bundle(tmp_path / "small.pt", image_size=32, generator={"base_channels": 4}))
    image = write_image(tmp_path / "face.png", photo(256))
    process, peaks = psutil.Process(), []

    def growth(seconds: float) -> float:
        audio = write_audio(tmp_path / f"speech{seconds:.0f}.flac", np.tile(speech(10.0), int(seconds // 10)))
        start, peak, done = process.memory_info().rss, [0], threading.Event()

        def sample():
            while not done.wait(0.05):
                peak[0] = max(peak[0], process.memory_info().rss)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            generate_video(small, image, audio, tmp_path / "out.mp4", progress=False)
        finally:
            done.set()
            sampler.join()
        return (peak[0] - start) / 2**20

    growth(10)  # warm-up: models, codecs and allocator pools
    short, long = growth(10), growth(60)
    # Holding the 60 s of 256x256 frames would take 280 MB; the 60 s of samples themselves take 4 MB.
    assert long - short < 40, f"peak RSS grew {short:.0f} MB for 10 s of audio, {long:.0f} MB for 60 s"


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def wait_for_ping(url: str, server: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow models serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow models serve did not answer {url} within {timeout_s} s")


def test_mlflow_serving_round_trip(tmp_path, bundle, monkeypatch):
    import mlflow

    from talking_face.serving.pyfunc import log_pyfunc_model
    from talking_face.serving.resolve import load_model

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_experiment("serving-test")
    with mlflow.start_run() as run:
        info = log_pyfunc_model(str(bundle), registered_model_name="talking-face-test")
    mlflow.MlflowClient().set_registered_model_alias("talking-face-test", "champion", info.registered_model_version)
    uri = "models:/talking-face-test@champion"
    for reference in (uri, f"runs:/{run.info.run_id}", f"runs:/{run.info.run_id}/model"):
        assert load_model(reference).image_size == 64

    image_bytes = cv2.imencode(".jpg", cv2.cvtColor(photo(256), cv2.COLOR_RGB2BGR))[1].tobytes()
    audio_bytes = write_audio(tmp_path / "speech.mp3", speech(1.2)).read_bytes()
    port, venv_bin = free_port(), Path(sys.executable).parent
    log = (tmp_path / "server.log").open("w")
    # As from an activated venv: the server runs `uvicorn` from PATH.
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        [str(venv_bin / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_ping(f"http://127.0.0.1:{port}/ping", server, timeout_s=120)
        row = [base64.b64encode(image_bytes).decode(), base64.b64encode(audio_bytes).decode()]
        body = json.dumps({"dataframe_split": {"columns": ["image", "audio"], "data": [row]}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        log.close()
    video = base64.b64decode(answer["predictions"][0]["video"])
    with av.open(io.BytesIO(video)) as container:
        stream, sound = container.streams.video[0], container.streams.audio[0]
        assert stream.codec_context.name == "h264" and float(stream.average_rate) == 25
        assert (stream.codec_context.width, stream.codec_context.height) == (256, 256)
        frames = sum(1 for _ in container.decode(stream))
    assert frames == 30  # 1.2 s at 25 fps
    with av.open(io.BytesIO(video)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert samples / sound.rate == pytest.approx(1.2, abs=0.05)
