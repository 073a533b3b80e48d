"""One clip in, its feature arrays out (the contract in features.schema), plus a summary row and params hash."""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager

import numpy as np

from talking_face.face.heatmaps import contour_heatmaps
from talking_face.face.track import (
    FaceTrackError,
    crop_frames,
    detect_track,
    smooth_boxes,
    square_boxes,
    to_crop_coordinates,
    track_landmarks,
)
from talking_face.features.audio import AUDIO_DEFAULTS, audio_features
from talking_face.features.flow import FARNEBACK_DEFAULTS, farneback_flow
from talking_face.features.schema import HEATMAP_SIZE, N_HEATMAPS, N_MEL, N_MFCC
from talking_face.media.audio import read_audio
from talking_face.media.errors import MediaError
from talking_face.media.video import read_frames

# Bump when the code changes what it writes for the same parameters, so stored features are recomputed.
FEATURE_VERSION = 1

EXTRACT_DEFAULTS = {
    "fps": 25,
    "crop_size": 64,
    "crop_margin": 0.3,
    "detect_every": 5,
    "detect_scale": 0.5,
    "max_faceless_fraction": 0.2,
    "smoothing_sigma": 2.0,
    "heatmap_size": HEATMAP_SIZE,
    "heatmap_sigma": 1.5,
    "flow_max_size": 128,
    "farneback": {},
    "audio": {},
}


def resolve_params(params: dict | None) -> dict:
    """The extraction parameters with every default filled in, nested groups included."""
    params = params or {}
    return {
        **EXTRACT_DEFAULTS,
        **params,
        "farneback": {**FARNEBACK_DEFAULTS, **(params.get("farneback") or {})},
        "audio": {**AUDIO_DEFAULTS, **(params.get("audio") or {})},
    }


@contextmanager
def _timed(timings: dict | None, step: str):
    start = time.perf_counter()
    yield
    if timings is not None:
        timings[step] = timings.get(step, 0.0) + time.perf_counter() - start


def extract_clip(video_path, audio_path, params: dict | None = None, timings: dict | None = None) -> dict:
    """Feature arrays of one clip, every one with the same T frames at params["fps"].

    `params` overrides the defaults (resolve_params). When `timings` is a dict, seconds per step are added to it
    (decode, detect, landmarks, crop, heatmaps, flow, audio). Raises MediaError naming the file when the
    clip cannot be decoded or shows too few faces.
    """
    options = resolve_params(params)
    size = int(options["crop_size"])
    with _timed(timings, "decode"):
        frames, fps = read_frames(video_path, fps=float(options["fps"]))
        audio = read_audio(audio_path, int(options["audio"]["sample_rate"]))
    with _timed(timings, "detect"):
        try:
            face_boxes = detect_track(
                frames, options["detect_every"], options["detect_scale"], options["max_faceless_fraction"]
            )
        except FaceTrackError as error:
            raise MediaError(video_path, str(error)) from None
        face_boxes = smooth_boxes(face_boxes, options["smoothing_sigma"])
        crop_boxes = square_boxes(face_boxes, options["crop_margin"])
    with _timed(timings, "landmarks"):
        points = to_crop_coordinates(track_landmarks(frames, face_boxes), crop_boxes, size)
    with _timed(timings, "crop"):
        crops = crop_frames(frames, crop_boxes, size)
    with _timed(timings, "heatmaps"):
        heatmaps = contour_heatmaps(points, size, int(options["heatmap_size"]), options["heatmap_sigma"])
    with _timed(timings, "flow"):
        flow = farneback_flow(crops, options["flow_max_size"], **options["farneback"])
    with _timed(timings, "audio"):
        sound = audio_features(audio, len(frames), fps, options["audio"])
    return {
        "frames": crops,
        "landmarks": points,
        "heatmaps": heatmaps,
        "flow": flow,
        **sound,
        "boxes": crop_boxes,
        "fps": np.float32(fps),
    }


def feature_params_hash(params: dict) -> str:
    """Short sha256 of the extraction parameters (defaults filled in) and FEATURE_VERSION."""
    canonical = json.dumps({"version": FEATURE_VERSION, **resolve_params(params)}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def shape_problems(features: dict) -> list[str]:
    """Where the arrays break the schema's shapes and dtypes (empty when they follow it)."""
    n_frames = len(features["frames"])
    size = features["frames"].shape[1]
    expected = {
        "frames": ((n_frames, size, size, 3), np.uint8),
        "landmarks": ((n_frames, 68, 2), np.float32),
        "heatmaps": ((n_frames, N_HEATMAPS, HEATMAP_SIZE, HEATMAP_SIZE), np.uint8),
        "flow": ((n_frames, 2, size, size), np.float16),
        "mel": ((n_frames, N_MEL), np.float32),
        "mfcc": ((n_frames, N_MFCC), np.float32),
        "f0": ((n_frames,), np.float32),
        "pitch": ((n_frames,), np.uint8),
        "energy_raw": ((n_frames,), np.float32),
        "energy": ((n_frames,), np.uint8),
        "boxes": ((n_frames, 4), np.float32),
    }
    problems = []
    for key, (shape, dtype) in expected.items():
        array = np.asarray(features.get(key))
        if array.shape != shape or array.dtype != dtype:
            problems.append(f"{key} is {array.dtype}{list(array.shape)}, expected {np.dtype(dtype)}{list(shape)}")
    return problems


def feature_summary(clip_id: str, features: dict) -> dict:
    """One row describing a clip's features, for validation and a person's overview."""
    floats = [np.asarray(v, dtype=np.float32) for v in features.values() if np.asarray(v).dtype.kind == "f"]
    size = features["frames"].shape[1]
    points = features["landmarks"]
    speed = np.hypot(*np.moveaxis(features["flow"][:-1].astype(np.float32), 1, 0))
    spread = np.linalg.norm(points - points.mean(axis=1, keepdims=True), axis=2).mean()
    problems = shape_problems(features)
    return {
        "clip_id": clip_id,
        "n_frames": int(len(features["frames"])),
        "crop_size": int(size),
        "shapes": json.dumps({key: list(np.shape(value)) for key, value in features.items()}),
        "shapes_ok": not problems,
        "shape_problems": "; ".join(problems),
        "nan_count": int(sum(np.isnan(v).sum() for v in floats)),
        "inf_count": int(sum(np.isinf(v).sum() for v in floats)),
        "voiced_fraction": float((features["f0"] > 0).mean()),
        "flow_min": float(speed.min()) if speed.size else 0.0,
        "flow_max": float(speed.max()) if speed.size else 0.0,
        "flow_mean": float(speed.mean()) if speed.size else 0.0,
        "landmark_spread": float(spread / size),
        "landmarks_inside": float(((points >= -0.5) & (points <= size - 0.5)).all(axis=2).mean()),
        "energy_mean_level": float(features["energy"].mean()),
    }
