"""Blinks (issue 11): the natural blink schedule, the eye closure map on a real face, the dataset's eye
control on a real GRID clip with blinks, and model files made before the `eyes` source."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from talking_face.atomic import torch_save
from talking_face.evaluation.blinks import blinks_per_second, detect_blinks
from talking_face.face.detect import detect_faces, landmarks
from talking_face.face.track import square_boxes, to_crop_coordinates
from talking_face.features.extract import extract_clip, resolve_params
from talking_face.features.eyes import (
    BLINK_DEPTH,
    LEFT_EYE,
    RIGHT_EYE,
    blink_schedule,
    eye_aspect_ratio,
    eye_blobs,
    eye_closure_maps,
)
from talking_face.models import model_config
from talking_face.models.config import SOURCES
from talking_face.serving.animate import animate
from talking_face.serving.blinks import crop_landmarks
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.photo import face_photo
from talking_face.serving.video import torch_threads
from talking_face.training.data import FeatureFrameDataset
from tests.generation_inputs import photo, speech

FPS = 25


def blink_runs(closure: np.ndarray) -> list[tuple[int, int]]:
    """(first, last + 1) of each run of closed (closure > 0) frames."""
    edges = np.flatnonzero(np.diff(np.r_[0, closure > 0, 0].astype(np.int8)))
    return [(int(start), int(end)) for start, end in edges.reshape(-1, 2)]


@pytest.mark.parametrize("rate", [0.2, 0.3, 0.5])
def test_the_blink_schedule_blinks_at_the_requested_rate_closing_fast_and_opening_slower(rate):
    seconds = 3600
    closure = blink_schedule(seconds * FPS, FPS, rate, seed=1)
    runs = blink_runs(closure)
    assert len(runs) / seconds == pytest.approx(rate, rel=0.05)
    assert closure.max() == pytest.approx(BLINK_DEPTH) and closure.min() == 0.0
    # A face whose EAR followed the closure (0.3 open) blinks at the rate the evaluation measures.
    assert blinks_per_second(0.3 * (1 - closure), FPS) == pytest.approx(rate, rel=0.1)
    closing = [np.argmax(closure[start:end]) for start, end in runs]
    opening = [end - start - 1 - np.argmax(closure[start:end][::-1]) for start, end in runs]
    assert np.mean(closing) < np.mean(opening)
    lengths = np.array([end - start for start, end in runs]) / FPS
    assert 0.1 <= lengths.min() and lengths.max() <= 0.4


def test_the_blink_schedule_is_seeded_and_empty_when_blinks_are_off():
    assert not blink_schedule(30 * FPS, FPS, 0.0, seed=1).any()
    first, again, other = (blink_schedule(30 * FPS, FPS, 0.4, seed) for seed in (1, 1, 2))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


@pytest.fixture(scope="module")
def face_crop():
    """The sample portrait's face cropped as the model sees it (64 px), and the photo's own landmarks of
    that face mapped into the crop."""
    image, margin = photo(256), resolve_params({})["crop_margin"]
    crop = face_photo(image, 64, margin).crop
    face_box = detect_faces(image)[0]
    box = square_boxes(face_box[None], margin)
    points = to_crop_coordinates(landmarks(image, face_box)[None], box, 64)[0]
    return crop, margin, points


def test_the_source_crops_eyes_are_found_where_the_photo_has_them(face_crop):
    crop, margin, points = face_crop
    found = crop_landmarks(crop, margin)
    for eye in (LEFT_EYE, RIGHT_EYE):
        assert np.linalg.norm(found[eye].mean(0) - points[eye].mean(0)) < 1.5  # pixels of the 64 px crop


def test_the_eye_map_is_zero_for_open_eyes_and_sits_on_the_eyes_only(face_crop):
    _, _, points = face_crop
    blobs = eye_blobs(points, 64)
    maps = eye_closure_maps(blobs, np.array([0.0, 0.6], np.float32))
    assert maps.shape == (2, 1, 64, 64) and not maps[0].any()
    assert maps[1].max() == pytest.approx(0.6, abs=0.05)
    for eye in (LEFT_EYE, RIGHT_EYE):
        x, y = np.round(points[eye].mean(0)).astype(int)
        assert maps[1, 0, y, x] > 0.5
    # Zero on the lower jaw, the nose tip, the mouth and the crop's borders; non-zero only near an eye.
    for x, y in np.round(points[[*range(2, 15), *range(30, 36), *range(48, 68)]]).astype(int):
        assert maps[1, 0, y, x] == 0.0
    assert not maps[1, 0, [0, -1]].any() and not maps[1, 0, :, [0, -1]].any()
    ys, xs = np.nonzero(maps[1, 0])
    for eye in (LEFT_EYE, RIGHT_EYE):
        near = np.hypot(xs - points[eye].mean(0)[0], ys - points[eye].mean(0)[1]) <= 1.2 * np.ptp(points[eye, 0]) + 1
        xs, ys = xs[~near], ys[~near]
    assert len(xs) == 0, "eye map pixels away from both eyes"


@pytest.fixture(scope="module")
def grid_blink_clip(grid_dir, tmp_path_factory):
    """A real GRID clip whose speaker blinks twice (frames 34-37 and 47-50), through the feature extraction."""
    path = grid_dir / "pwij3p.mpg"
    features = extract_clip(path, path, {"crop_size": 32})
    out = tmp_path_factory.mktemp("grid_features") / "pwij3p.npz"
    np.savez(out, **features, params_hash="test-params", content_hash="test-content")
    return str(out), features["landmarks"]


def test_dataset_items_carry_an_eye_map_that_is_larger_on_the_real_closed_eye_frames(grid_blink_clip):
    path, points = grid_blink_clip
    dataset = FeatureFrameDataset([path], context=5, audio_window=5)
    peaks = np.array([float(dataset[t]["eyes"].max()) for t in range(len(dataset))])
    ear = eye_aspect_ratio(points)
    closed = np.concatenate([np.arange(start, end) for start, end in detect_blinks(ear)])
    wide_open = np.flatnonzero(ear >= np.median(ear))
    assert len(closed) >= 2, "the clip's blinks were not found in its landmarks"
    assert peaks[closed].min() > 0.3 and peaks[wide_open].max() < 0.15
    # The map sits on the source frame's eyes, whichever frame it belongs to.
    eye_map = dataset[int(closed[0])]["eyes"][0, 0].numpy()
    ys, xs = np.nonzero(eye_map)
    centre = np.average(np.stack([xs, ys], 1), axis=0, weights=eye_map[ys, xs])
    eyes = (points[0, LEFT_EYE].mean(0) + points[0, RIGHT_EYE].mean(0)) / 2
    assert np.linalg.norm(centre - eyes) < 1.0
    assert dataset[int(closed[0])]["source"].shape == (3, 32, 32)


def test_a_model_file_without_the_eyes_source_still_loads_and_generates_without_blinks(tmp_path, caplog):
    torch.manual_seed(0)
    config = model_config("cpu", variant="t3_all_flow", overrides={"image_size": 32, "generator": {"base_channels": 8}})
    state = TalkingFaceModel.build(config, resolve_params({"crop_size": 32})).state()
    del state["config"]["generator"]["man"]["branches"]["eyes"]  # as written before the eyes source existed
    model = TalkingFaceModel.load(torch_save(state, tmp_path / "old.pt"))
    assert "eyes" not in model.generator.conditioning_keys
    crop = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    audio = speech(1.0)
    with torch_threads(1), caplog.at_level(logging.WARNING):
        asked = [frame.image for frame in animate(model, crop, audio, blink_rate=3.0)]
        assert "will not blink" in caplog.text
        assert np.array_equal(asked, [frame.image for frame in animate(model, crop, audio, blink_rate=0.0)])

    state["config"]["generator"]["man"]["enabled"] = SOURCES  # claims an eyes source it has no weights for
    with pytest.raises(ValueError, match=r"bad\.pt: the generator's weights do not fit .*branches\.eyes"):
        TalkingFaceModel.load(torch_save(state, tmp_path / "bad.pt"))


def test_a_longer_blink_schedule_begins_with_the_shorter_one():
    """Live streams do not know their length: their blinks must be the file's blinks for the same seed."""
    long = blink_schedule(25 * 120, 25.0, 0.4, seed=3)
    for n_frames in (75, 251, 1000):
        assert np.array_equal(blink_schedule(n_frames, 25.0, 0.4, seed=3), long[:n_frames])
    assert long.any()
