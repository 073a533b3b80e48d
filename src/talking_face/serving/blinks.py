"""Blinks at generation time: a schedule drawn from the natural blink model (`features.eyes`) at a rate the
user sets, placed on the eyes of the source photo as the eye closure maps the MAN `eyes` source reads.

    controls = EyeControls.for_model(model, source_crop, n_frames, rate=0.3, seed=0)
    controls.map(t)          # [1, 1, S, S]: frame t's eye closure map (zeros between blinks)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from talking_face.face.detect import landmarks
from talking_face.features.eyes import blink_schedule, eye_blobs

logger = logging.getLogger(__name__)

LANDMARK_SIDE = 256  # a small crop is enlarged to this side before dlib places the landmarks


def crop_landmarks(crop: np.ndarray, crop_margin: float) -> np.ndarray:
    """dlib's 68 points (x, y, crop pixels, float32 [68, 2]) of the face in a crop made like the training
    data: the face box is the crop's centre square, the crop being (1 + 2 * crop_margin) times its side."""
    side = crop.shape[0]
    scale = max(1.0, LANDMARK_SIDE / side)
    big = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else crop
    border = big.shape[0] * crop_margin / (1 + 2 * crop_margin)
    box = (border, border, big.shape[0] - border, big.shape[0] - border)
    return ((landmarks(big, box) + 0.5) / scale - 0.5).astype(np.float32)


@dataclass
class EyeControls:
    """Per-frame eye closure (float32 [T]) and the source's eye blobs (float32 tensor [1, 1, S, S])."""

    closure: np.ndarray
    blobs: torch.Tensor

    @classmethod
    def for_model(
        cls, model, source_crop: np.ndarray, n_frames: int, rate: float, seed: int = 0
    ) -> EyeControls:
        """Blinks at `rate` per second (0: none) on the eyes of `source_crop` for a TalkingFaceModel. A model
        without the `eyes` source (the paper's five sources, or a model file made before it) cannot blink:
        it gets no blinks, with a warning when some were asked for."""
        size = source_crop.shape[0]
        device = next(model.generator.parameters()).device
        reads_eyes = "eyes" in model.generator.conditioning_keys
        if rate > 0 and not reads_eyes:
            logger.warning("the model has no eye control (MAN source 'eyes'): its faces will not blink")
        closure = blink_schedule(n_frames, float(model.features["fps"]), rate if reads_eyes else 0.0, seed)
        blobs = np.zeros((size, size), np.float32)
        if closure.any():
            blobs = eye_blobs(crop_landmarks(source_crop, float(model.features["crop_margin"])), size)
        return cls(closure, torch.from_numpy(blobs)[None, None].to(device))

    def map(self, t: int) -> torch.Tensor:
        """Frame t's eye closure map [1, 1, S, S]."""
        return self.blobs * float(self.closure[t])
