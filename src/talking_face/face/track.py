"""Face track of a clip: one dlib box per frame, gaps interpolated, smoothed over time, square crops.

Detection is the costly step, so it runs on every `detect_every`-th frame, downscaled by `detect_scale`,
and the boxes in between are interpolated; landmarks still come from every full-resolution frame.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from talking_face.face.detect import detect_faces, landmarks


class FaceTrackError(ValueError):
    """A clip shows a face in too few frames to be tracked; the message says how few."""


def sampled_frames(n_frames: int, detect_every: int) -> np.ndarray:
    """Frame indices that go through the detector: every k-th one and always the last."""
    return np.unique(np.append(np.arange(0, n_frames, max(1, int(detect_every))), n_frames - 1))


def detect_track(
    frames: np.ndarray, detect_every: int = 5, detect_scale: float = 0.5, max_faceless_fraction: float = 0.2
) -> np.ndarray:
    """One face box per frame (float32 [T, 4]).

    The largest face of each sampled frame is kept; frames in between or without a face get boxes
    interpolated linearly from their neighbours (held constant before the first and after the last).
    Raises FaceTrackError when more than `max_faceless_fraction` of the sampled frames show no face.
    """
    sampled = sampled_frames(len(frames), detect_every)
    found_at, found_boxes = [], []
    for index in sampled:
        image = frames[index]
        if detect_scale != 1.0:
            image = cv2.resize(image, None, fx=detect_scale, fy=detect_scale, interpolation=cv2.INTER_AREA)
        boxes = detect_faces(image, upsample_if_missing=True)
        if len(boxes):
            found_at.append(index)
            found_boxes.append(boxes[0] / detect_scale)
    faceless = 1.0 - len(found_at) / len(sampled)
    if not found_at or faceless > max_faceless_fraction:
        raise FaceTrackError(
            f"no face found in {len(sampled) - len(found_at)} of {len(sampled)} sampled frames "
            f"({faceless:.0%}, more than the allowed {max_faceless_fraction:.0%})"
        )
    found_boxes = np.stack(found_boxes)
    every_frame = np.arange(len(frames))
    track = np.stack([np.interp(every_frame, found_at, found_boxes[:, k]) for k in range(4)], axis=1)
    return track.astype(np.float32)


def smooth_boxes(boxes: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (sigma in frames) of box centres and sizes, so the crop does not jitter."""
    if sigma <= 0:
        return boxes.astype(np.float32)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = boxes[:, 2:] - boxes[:, :2]
    centres = gaussian_filter1d(centres, sigma, axis=0, mode="nearest")
    sizes = gaussian_filter1d(sizes, sigma, axis=0, mode="nearest")
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)


def square_boxes(boxes: np.ndarray, margin: float) -> np.ndarray:
    """Square boxes on whole pixels around each face box, widened by `margin` of its size on each side."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sides = np.round(np.max(boxes[:, 2:] - boxes[:, :2], axis=1) * (1 + 2 * margin))
    sides = np.maximum(sides, 2)
    origins = np.round(centres - sides[:, None] / 2)
    return np.concatenate([origins, origins + sides[:, None]], axis=1).astype(np.float32)


def crop_square(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square `box` of `image` resized to size x size; parts outside the image repeat its border."""
    x0, y0, x1, y1 = (int(v) for v in box)
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    patch = image[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    interpolation = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def to_crop_coordinates(points: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Maps source-pixel points [T, N, 2] into the size x size crops of `boxes` [T, 4].

    Both use pixel-index coordinates (pixel i spans [i - 0.5, i + 0.5]), hence the half-pixel terms.
    """
    scale = (size / (boxes[:, 2] - boxes[:, 0]))[:, None, None]
    return ((points + 0.5 - boxes[:, None, :2]) * scale - 0.5).astype(np.float32)


def crop_frames(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, size, size, 3] crops of each frame's square box."""
    return np.stack([crop_square(frame, box, size) for frame, box in zip(frames, boxes)])


def track_landmarks(frames: np.ndarray, face_boxes: np.ndarray) -> np.ndarray:
    """dlib's 68 points [T, 68, 2] in source pixels, each frame fitted inside its face box.

    The shape predictor was trained on detector boxes, so it gets the face box, not the wider crop.
    """
    return np.stack([landmarks(frame, box) for frame, box in zip(frames, face_boxes)])
