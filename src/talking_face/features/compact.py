"""The compact clip: what cannot be recomputed cheaply, at its real precision; the rest is rendered on read.

`encode_clip` turns a feature file's dict (features.schema) into one shard row: the face crops as one
image per frame (JPEG 4:4:4 by default, PNG for lossless), the audio as 16-bit PCM (scaled by its peak when that is above 1), the landmarks, audio
features, pitch, energy and boxes as their raw bytes. `decode_clip` gives back the dict `load_clip` gives:
the heatmaps drawn again from the landmarks (exactly the stored ones: the same function on the same
points) and the flow computed again from the decoded crops (cheaper than reading it: docs/scale.md).
"""

from __future__ import annotations

import json

import cv2
import numpy as np

from talking_face.face.heatmaps import contour_heatmaps
from talking_face.features.flow import farneback_flow
from talking_face.features.schema import N_MEL, N_MFCC

# The arrays stored as raw bytes: dtype and the shape of one frame's value.
STORED_ARRAYS = {
    "landmarks": (np.float32, (68, 2)),
    "mel": (np.float32, (N_MEL,)),
    "mfcc": (np.float32, (N_MFCC,)),
    "f0": (np.float32, ()),
    "pitch": (np.uint8, ()),
    "energy_raw": (np.float32, ()),
    "energy": (np.uint8, ()),
    "boxes": (np.float32, (4,)),
}
RENDER_KEYS = ("heatmap_size", "heatmap_sigma", "flow_max_size", "farneback")  # what decoding redraws with
FRAME_FORMATS = {"jpeg": ".jpg", "png": ".png"}
PCM_LEVELS = 32767  # 16-bit PCM: the precision the recordings' audio had before decoding to float


class CompactClipError(ValueError):
    """A shard row that cannot be decoded; the message names the clip and the problem."""


def encode_frames(frames: np.ndarray, frame_format: str = "jpeg", quality: int = 95) -> list[bytes]:
    """One image file per RGB frame [T, S, S, 3]; JPEG without chroma subsampling (the lips' colour)."""
    if frame_format not in FRAME_FORMATS:
        raise ValueError(f"frame_format {frame_format!r}: expected one of {sorted(FRAME_FORMATS)}")
    options = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
               cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444] if frame_format == "jpeg" else []  # fmt: skip
    images = []
    for frame in frames:
        ok, data = cv2.imencode(FRAME_FORMATS[frame_format], cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), options)
        if not ok:
            raise ValueError(f"OpenCV could not encode a {frame.shape} frame as {frame_format}")
        images.append(data.tobytes())
    return images


def decode_frames(images: list[bytes], clip_id: str) -> np.ndarray:
    frames = []
    for t, data in enumerate(images):
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CompactClipError(f"clip {clip_id}: frame {t} is not a readable image")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return np.stack(frames)


def encode_clip(clip: dict, extract_params: dict, frame_format: str = "jpeg", quality: int = 95) -> dict:
    """A shard row of one clip: `clip` as load_clip gives it, `extract_params` the resolved extraction
    parameters it was made with (features.extract.resolve_params)."""
    n_frames = len(clip["frames"])
    # Decoded MPEG audio overshoots [-1, 1]: the clip's own peak sets the PCM range when it does.
    audio_scale = max(1.0, float(np.abs(clip["audio"]).max(initial=0.0)))
    audio = np.round(clip["audio"] / audio_scale * PCM_LEVELS).astype("<i2")
    return {
        "clip_id": str(clip.get("clip_id", "")),
        "params_hash": str(clip.get("params_hash", "")),
        "content_hash": str(clip.get("content_hash", "")),
        "n_frames": n_frames,
        "fps": float(clip["fps"]),
        "render": json.dumps({key: extract_params[key] for key in RENDER_KEYS}, sort_keys=True),
        "frames": encode_frames(clip["frames"], frame_format, quality),
        "audio": audio.tobytes(),
        "audio_scale": audio_scale,
        **{key: np.ascontiguousarray(clip[key], dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
           for key, (dtype, _) in STORED_ARRAYS.items()},  # fmt: skip
    }


def decode_clip(row: dict) -> dict[str, np.ndarray]:
    """The feature dict of a shard row (the keys and arrays load_clip gives for a feature file)."""
    clip_id, n_frames = row["clip_id"], int(row["n_frames"])
    clip = {}
    for key, (dtype, shape) in STORED_ARRAYS.items():
        values = np.frombuffer(row[key], dtype=np.dtype(dtype).newbyteorder("<"))
        if values.size != n_frames * int(np.prod(shape)):
            raise CompactClipError(f"clip {clip_id}: {key} holds {values.size} values, expected {n_frames} x {shape}")
        clip[key] = values.reshape(n_frames, *shape).astype(dtype)
    frames = decode_frames(row["frames"], clip_id)
    if len(frames) != n_frames:
        raise CompactClipError(f"clip {clip_id}: {len(frames)} frame images, expected {n_frames}")
    render = json.loads(row["render"])
    size = frames.shape[1]
    return {
        "frames": frames,
        **clip,
        "heatmaps": contour_heatmaps(clip["landmarks"], size, int(render["heatmap_size"]), render["heatmap_sigma"]),
        "flow": farneback_flow(frames, render["flow_max_size"], **render["farneback"]),
        "audio": np.frombuffer(row["audio"], dtype="<i2").astype(np.float32) * np.float32(row["audio_scale"] / PCM_LEVELS),
        "fps": np.float32(row["fps"]),
        "params_hash": np.array(row["params_hash"]),
        "content_hash": np.array(row["content_hash"]),
    }
