"""The generation path under the CLI, the batch pipeline and MLflow serving: the fast per-frame step against
the plain generator, chunked audio analysis against the whole clip, no output left by an interrupted run,
flat memory on long audio, and the `mlflow models serve` round trip."""

from __future__ import annotations

import base64
import copy
import io
import json
import threading
import urllib.request
from collections import deque
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from talking_face.features.audio import audio_features
from talking_face.features.extract import resolve_params
from talking_face.features.eyes import DEFAULT_BLINK_RATE
from talking_face.features.phonemes import speech_visemes
from talking_face.media.audio import read_audio
from talking_face.models import model_config
from talking_face.models.man import man_blocks
from talking_face.serving import animate as animate_module
from talking_face.serving.animate import GeneratedFrame, animate, audio_chunks, frame_count, generated_frame
from talking_face.serving.blinks import EyeControls
from talking_face.serving.parts import source_parts
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.photo import face_photo
from talking_face.serving.video import torch_threads, write_talking_video
from talking_face.conditioning.inputs import generator_conditioning, motion_for_generator
from talking_face.conditioning.tensors import audio_conditioning, to_image_tensor
from tests.generation_inputs import photo, speech, untrained_bundle, write_audio, write_image
from tests.readme_commands import readme_line, running_command, trained_project


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return untrained_bundle(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="module")
def model(bundle) -> TalkingFaceModel:
    model = TalkingFaceModel.load(bundle)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.predictor.head.weight, std=0.05)  # the fresh flow head is all zeros: give it motion
    torch.nn.init.normal_(model.generator.composite_head.to_motion.weight, std=0.05)  # and the composite's motion
    torch.nn.init.normal_(model.generator.composite_head.to_change.weight, std=0.05)  # and a painted change
    return model


@torch.inference_mode()
def plain_frames(
    model: TalkingFaceModel, crop: np.ndarray, audio: np.ndarray, blink_rate: float = DEFAULT_BLINK_RATE
) -> list[GeneratedFrame]:
    """The straightforward loop: whole-clip audio features, one full generator call per frame."""
    fps, params = float(model.features["fps"]), model.features["audio"]
    n_frames = frame_count(len(audio), int(params["sample_rate"]), fps)
    clip = audio_features(audio, n_frames, fps, params)
    if model.uses_visemes:
        clip["visemes"] = speech_visemes(audio, n_frames, int(params["sample_rate"]), fps)
    eyes = EyeControls.for_model(model, crop, n_frames, blink_rate)
    source = to_image_tensor(crop)[None]
    parts = source_parts(model, crop)
    previous = deque([source] * model.context_frames, maxlen=model.context_frames)
    frames = []
    for t in range(n_frames):
        batch = {key: value[None] for key, value in audio_conditioning(clip, t, model.audio_window).items()}
        batch["source"], batch["eyes"] = source, eyes.map(t)
        if parts is not None:
            batch["parts"] = parts
        motion = model.predictor(torch.cat(list(previous), 1), batch["mel"])
        output = model.generator(generator_conditioning(batch, motion_for_generator(motion, model.image_size)))
        previous.append(output.image)
        frames.append(generated_frame(output))
    return frames


def assert_same_frames(expected: list[GeneratedFrame], actual: list[GeneratedFrame]) -> None:
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual):
        # Batched calls round differently in the last float bits: a pixel may land one level off.
        assert np.abs(want.image.astype(int) - got.image.astype(int)).max() <= 1
        assert np.abs(want.painted.astype(int) - got.painted.astype(int)).max() <= 1
        for name in ("attention", "mask", "motion"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-4, atol=1e-4)


def test_fast_generation_matches_the_plain_generator(model, monkeypatch):
    crop = face_photo(photo(256), model.image_size, model.features["crop_margin"]).crop
    audio = speech(2.4)
    with torch_threads(1):
        expected = plain_frames(model, crop, audio, blink_rate=1.5)  # blinks and open eyes both
        assert_same_frames(expected, list(animate(model, crop, audio, blink_rate=1.5)))
        assert len({frame.image.tobytes() for frame in expected}) > 1  # the frames do change over time
        # Small chunks and batches: chunk edges, margins and batch edges fall inside the clip.
        monkeypatch.setattr(animate_module, "CHUNK_FRAMES", 24)
        monkeypatch.setattr(animate_module, "BATCH_FRAMES", 7)
        assert_same_frames(expected, list(animate(model, crop, audio, blink_rate=1.5)))


def test_blinks_off_is_the_open_eye_control_and_a_blink_changes_the_frames_from_its_first_frame_on(model):
    model = copy.deepcopy(model)
    for _, block in man_blocks(model.generator):  # an untrained model weighs all 7 sources alike: let the eyes show
        with torch.no_grad():
            block.logits[block.sources.index("eyes")] = 2.0
    crop = face_photo(photo(256), model.image_size, model.features["crop_margin"]).crop
    audio = speech(1.6)
    with torch_threads(1):
        off = list(animate(model, crop, audio, blink_rate=0.0))
        on = list(animate(model, crop, audio, blink_rate=1.5))
        # The plain generator fed an all-zero eye closure map (closure 0 on every frame).
        assert_same_frames(plain_frames(model, crop, audio, blink_rate=0.0), off)
    closure = EyeControls.for_model(model, crop, len(on), 1.5).closure
    first = int(np.flatnonzero(closure)[0])
    assert 0 < first < len(on)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(on[:first], off[:first]))
    peak = first + int(np.argmax(closure[first : first + 10]))
    assert np.abs(on[peak].image.astype(int) - off[peak].image.astype(int)).max() > 2


def test_generated_frames_are_the_photo_outside_its_moving_parts(model):
    crop = face_photo(photo(256), model.image_size, model.features["crop_margin"]).crop
    parts = source_parts(model, crop)[0, 0].numpy()
    outside = parts == 0
    assert parts[outside].size > parts.size / 3 and parts.max() == 1.0  # the mouth, chin and eyes only
    with torch_threads(1):
        frames = list(animate(model, crop, speech(1.2), blink_rate=1.5))
    changed = np.abs(np.stack([frame.image for frame in frames]).astype(int) - crop.astype(int)).max(axis=(0, 3))
    assert changed[~outside].max() > 2  # the mouth and the eyes do move
    assert changed[outside].max() <= 1  # the rest is the photo (up to the uint8 round trip)


def test_mouth_strength_scales_the_mouths_change_from_the_photo_and_keeps_the_blinks(model):
    crop = face_photo(photo(256), model.image_size, model.features["crop_margin"]).crop
    full, none = (source_parts(model, crop, strength)[0, 0].numpy() for strength in (1.0, 0.0))
    eyes, mouth = none > 0.5, (full > 0) & (none == 0)
    assert eyes.sum() > 20 and mouth.sum() > eyes.sum() and (full >= none).all()
    assert np.mean(full[eyes] == none[eyes]) > 0.9  # the eyes are kept (the mouth region's rim may reach them)
    audio = speech(1.6)

    def change(strength: float) -> np.ndarray:
        frames = list(animate(model, crop, audio, blink_rate=1.5, mouth_strength=strength))
        return np.abs(np.stack([frame.image for frame in frames]).astype(int) - crop.astype(int)).max(axis=3)

    with torch_threads(1):
        still, half, whole = change(0.0), change(0.5), change(1.0)
    assert still[:, mouth].max() <= 1 and still[:, eyes].max() > 2  # a still mouth; the eyes still blink
    assert 0 < half[:, mouth].mean() < whole[:, mouth].mean()
    model.mouth_strength = 0.5  # the model's own strength is what None means
    try:
        with torch_threads(1):
            assert np.array_equal(change(None), half)
    finally:
        model.mouth_strength = 1.0


@pytest.mark.parametrize("variant", ["t2_partial_lstm", "t2_eca_conv1d", "t3_all_heatmaps", "t3_image_mel"])
def test_fast_generation_matches_for_other_branches_and_sources(variant):
    config = model_config("cpu", variant=variant, overrides={"image_size": 32})
    model = TalkingFaceModel.build(config, resolve_params({"crop_size": 32})).eval()
    if config.generator.man.motion == "flow":
        torch.manual_seed(0)
        torch.nn.init.normal_(model.predictor.head.weight, std=0.05)
    crop = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with torch_threads(1):
        assert_same_frames(plain_frames(model, crop, speech(1.0)), list(animate(model, crop, speech(1.0))))


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
        key: np.concatenate([features[key][offset : offset + count] for features, offset, count in chunks])
        for key in ("mel", "mfcc", "energy", "pitch", "f0")
    }
    np.testing.assert_allclose(joined["mel"], whole["mel"], atol=1e-4)
    np.testing.assert_allclose(joined["mfcc"], whole["mfcc"], atol=1e-3)
    # pyworld's DIO filters beyond its frame and removes the signal's mean; 2 s of margin hide both.
    for key in ("energy", "pitch"):
        assert np.array_equal(joined[key], whole[key]), key


def test_an_interrupted_generation_leaves_no_file(tmp_path, model):
    out = tmp_path / "out.mp4"
    audio = speech(2.0)

    def interrupted():
        for index, frame in enumerate(animate(model, np.zeros((64, 64, 3), np.uint8), audio)):
            if index == 10:
                raise KeyboardInterrupt
            yield frame

    with pytest.raises(KeyboardInterrupt), torch_threads(1):
        write_talking_video(out, interrupted(), audio, 16000, 25)
    assert list(tmp_path.iterdir()) == []


def test_memory_stays_flat_for_long_audio(tmp_path, monkeypatch):
    psutil = pytest.importorskip("psutil")
    from talking_face.serving.video import generate_video

    # 5 s audio chunks instead of 30: the 10 s and the 40 s run then both analyse whole chunks, so any
    # difference in their peaks comes from what grows with the length of the video.
    monkeypatch.setattr(animate_module, "CHUNK_FRAMES", 125)
    # A small network keeps this quick; what is measured is the streaming around it.
    small_bundle = untrained_bundle(tmp_path / "small.pt", image_size=32, generator={"base_channels": 4})
    small = TalkingFaceModel.load(small_bundle)
    image = write_image(tmp_path / "face.png", photo(256))
    process = psutil.Process()

    def growth(seconds: float) -> float:
        audio = write_audio(tmp_path / f"speech{seconds:.0f}.flac", np.tile(speech(10.0), int(seconds // 10)))
        start, done = process.memory_info().rss, threading.Event()
        peak = [start]

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
    short, long = growth(10), growth(40)
    # Holding the 30 s more of 256x256 frames would take 140 MB; 30 s more samples take 2 MB.
    assert long - short < 25, f"peak RSS grew {short:.0f} MB for 10 s of audio, {long:.0f} MB for 40 s"


def test_mlflow_serving_round_trip_with_the_readme_command(tmp_path, bundle):
    """`make serve-mlflow` exactly as the README prints it, in a fresh clone's state after `make train`, from
    a shell whose PATH does not hold the venv (MLflow starts `uvicorn` from PATH)."""
    from mlflow import MlflowClient

    from talking_face.serving.resolve import load_model

    project = trained_project(tmp_path / "project", bundle)
    store = f"sqlite:///{project / 'mlflow.db'}"
    run_id = MlflowClient(store, store).get_model_version_by_alias("talking-face-man", "champion").run_id
    for reference in ("models:/talking-face-man@champion", f"runs:/{run_id}", f"runs:/{run_id}/model"):
        assert load_model(reference, store).image_size == 64

    image_bytes = cv2.imencode(".jpg", cv2.cvtColor(photo(256), cv2.COLOR_RGB2BGR))[1].tobytes()
    audio_bytes = write_audio(tmp_path / "speech.mp3", speech(1.2)).read_bytes()
    line = readme_line("make serve-mlflow")
    with running_command(line, project, 5001, "/ping", tmp_path / "server.log"):
        row = [base64.b64encode(image_bytes).decode(), base64.b64encode(audio_bytes).decode()]
        body = json.dumps({"dataframe_split": {"columns": ["image", "audio"], "data": [row]}}).encode()
        request = urllib.request.Request(
            "http://127.0.0.1:5001/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
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
