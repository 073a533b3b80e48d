"""Optical flow between consecutive face crops (OpenCV's Farneback) and its colour-wheel picture."""

from __future__ import annotations

import cv2
import numpy as np

FARNEBACK_DEFAULTS = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2}


def farneback_flow(crops: np.ndarray, max_size: int | None = None, **farneback) -> np.ndarray:
    """float16 [T, 2, S, S] flow (dx, dy) in crop pixels from frame t to t + 1; the last frame's is 0.

    With `max_size` below S, the flow is computed on crops shrunk to max_size, with the window shrunk
    alike so it covers the same part of the face, and scaled back up: the cost grows with the pixel
    count and Farneback's field is smooth anyway. `farneback` overrides FARNEBACK_DEFAULTS
    (cv2.calcOpticalFlowFarneback's parameters).
    """
    options = {**FARNEBACK_DEFAULTS, **farneback}
    size = crops.shape[1]
    work = min(size, int(max_size)) if max_size else size
    grays = [cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) for crop in crops]
    if work < size:
        grays = [cv2.resize(gray, (work, work), interpolation=cv2.INTER_AREA) for gray in grays]
        options["winsize"] = max(5, int(options["winsize"] * work / size) | 1)
    flow = np.zeros((len(crops), 2, size, size), dtype=np.float16)
    for t in range(len(grays) - 1):
        pair = cv2.calcOpticalFlowFarneback(
            grays[t],
            grays[t + 1],
            None,
            options["pyr_scale"],
            int(options["levels"]),
            int(options["winsize"]),
            int(options["iterations"]),
            int(options["poly_n"]),
            options["poly_sigma"],
            0,
        )
        if work < size:
            pair = cv2.resize(pair, (size, size), interpolation=cv2.INTER_LINEAR) * (size / work)
        flow[t] = pair.transpose(2, 0, 1)
    return flow


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """RGB uint8 [H, W, 3] picture of one flow field [2, H, W]: hue is direction, brightness is speed.

    Brightness is scaled to `max_magnitude` (the field's own maximum when None), so fields drawn with the
    same value compare.
    """
    dx, dy = (np.asarray(component, dtype=np.float32) for component in flow)
    magnitude, angle = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    top = float(max_magnitude) if max_magnitude else float(magnitude.max())
    hsv = np.zeros(dx.shape + (3,), dtype=np.uint8)
    hsv[..., 0] = (angle / 2).astype(np.uint8)  # OpenCV's 8-bit hue runs 0..179
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(magnitude / top * 255, 0, 255).astype(np.uint8) if top > 0 else 0
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
