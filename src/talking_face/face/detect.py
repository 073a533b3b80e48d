"""Single-image face detection and 68-point landmarks (RGB uint8 images, pixel coordinates)."""

from __future__ import annotations

import dlib
import numpy as np

from talking_face.face import models


def detect_faces(image: np.ndarray, upsample_if_missing: bool = True) -> np.ndarray:
    """Face boxes as float32 [N, 4] (x0, y0, x1, y1), largest first.

    Upsampling doubles the cost, so it runs only when the plain pass finds nothing.
    """
    image = np.ascontiguousarray(image)
    rects = models.detector()(image, 0)
    if len(rects) == 0 and upsample_if_missing:
        rects = models.detector()(image, 1)
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.float32).reshape(-1, 4)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[np.argsort(-areas)]


def landmarks(image: np.ndarray, box) -> np.ndarray:
    """dlib's 68 points inside `box` (x0, y0, x1, y1) as float32 [68, 2] (x, y)."""
    rect = dlib.rectangle(*[int(round(v)) for v in box])
    shape = models.shape_predictor()(np.ascontiguousarray(image), rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def face_embedding(image: np.ndarray, box) -> np.ndarray:
    """dlib's 128-d face-recognition embedding of the face in `box`."""
    rect = dlib.rectangle(*[int(round(v)) for v in box])
    image = np.ascontiguousarray(image)
    shape = models.shape_predictor()(image, rect)
    return np.asarray(models.face_encoder().compute_face_descriptor(image, shape), dtype=np.float32)
