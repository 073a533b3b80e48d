"""Keypoint heatmaps: 15 facial-part contours drawn from dlib's 68 landmarks, blurred, in [0, 1].

The issue lists 13 parts (jaw, brows, nose bridge, lower nose, eyelids, lips); the jaw is split into three
(left cheek, chin, right cheek) to reach the paper's 15 channels, because the chin moves with speech while
the cheeks mostly follow the head. "Left" and "right" are as seen in the image: dlib's point 0 is on the
image's left.
"""

from __future__ import annotations

import cv2
import numpy as np

# Point indices of each contour, in drawing order; lids and lips share their corner points.
CONTOUR_GROUPS: dict[str, tuple[int, ...]] = {
    "jaw_left": tuple(range(0, 7)),
    "chin": tuple(range(6, 11)),
    "jaw_right": tuple(range(10, 17)),
    "brow_left": tuple(range(17, 22)),
    "brow_right": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose_lower": tuple(range(31, 36)),
    "eye_left_upper_lid": (36, 37, 38, 39),
    "eye_left_lower_lid": (39, 40, 41, 36),
    "eye_right_upper_lid": (42, 43, 44, 45),
    "eye_right_lower_lid": (45, 46, 47, 42),
    "lip_outer_upper": tuple(range(48, 55)),
    "lip_outer_lower": (54, 55, 56, 57, 58, 59, 48),
    "lip_inner_upper": tuple(range(60, 65)),
    "lip_inner_lower": (64, 65, 66, 67, 60),
}

_SUBPIXEL_BITS = 4  # cv2 draws with 1/16-pixel precision


def draw_contours(points: np.ndarray, size: int = 96) -> np.ndarray:
    """One frame's contours as float32 [15, size, size] anti-aliased 1-pixel polylines in [0, 1]."""
    canvas = np.zeros((len(CONTOUR_GROUPS), size, size), dtype=np.uint8)
    fixed = np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    for channel, indices in zip(canvas, CONTOUR_GROUPS.values()):
        cv2.polylines(channel, [fixed[list(indices)]], False, 255, 1, cv2.LINE_AA, _SUBPIXEL_BITS)
    return canvas.astype(np.float32) / 255.0


def contour_heatmaps(landmarks: np.ndarray, crop_size: int, size: int = 96, sigma: float = 1.5) -> np.ndarray:
    """Heatmaps uint8 [T, 15, size, size] (value / 255 in [0, 1]) from landmarks [T, 68, 2] in crop pixels.

    Each channel is blurred with a Gaussian of `sigma` heatmap pixels and scaled so its peak is 1.
    """
    scale = size / crop_size
    heatmaps = np.zeros((len(landmarks), len(CONTOUR_GROUPS), size, size), dtype=np.uint8)
    for frame_heatmaps, points in zip(heatmaps, landmarks):
        # Pixel-index coordinates: pixel centres scale about the half-pixel offset.
        contours = draw_contours((points + 0.5) * scale - 0.5, size)
        for out, contour in zip(frame_heatmaps, contours):
            blurred = cv2.GaussianBlur(contour, (0, 0), sigma) if sigma > 0 else contour
            peak = blurred.max()
            if peak > 0:
                out[:] = np.round(blurred * (255.0 / peak))
    return heatmaps
