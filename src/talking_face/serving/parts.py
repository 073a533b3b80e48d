"""Where and how the face may change at generation time, from the source photo's landmarks: its moving parts
(eyes, mouth and chin, `features.parts`), which cap the composite head's mask of a model trained with
`mask_region: parts`, and its mouth, which the model's mouth layer opens by the speech (`models.mouth`)."""

from __future__ import annotations

import numpy as np
import torch

from talking_face.conditioning.bundle import TalkingFaceModel, check_mouth_strength
from talking_face.features.parts import moving_parts
from talking_face.models.generator import MOUTH_KEYS
from talking_face.models.mouth import MouthShape
from talking_face.serving.blinks import crop_landmarks


def source_parts(
    model: TalkingFaceModel, source_crop: np.ndarray, mouth_strength: float | None = None,
    points: np.ndarray | None = None,
) -> torch.Tensor | None:
    """The moving parts of `source_crop` (uint8 [S, S, 3], cropped as in training) as a [1, 1, S, S] map on
    the model's device, the mouth region at `mouth_strength` (None: the model's calibrated one), or None for a
    model whose mask they do not cap. `points`: the crop's landmarks when already found. A model with a mouth
    layer keeps its generator's mask off the mouth: the layer opens it, and the generator's own paint on top
    cost mouth LMD on unseen people (docs/talking.md)."""
    if not model.generator.limits_mask:
        return None
    strength = model.mouth_strength if mouth_strength is None else check_mouth_strength(mouth_strength)
    strength = 0.0 if model.mouth is not None else strength
    points = crop_landmarks(source_crop, float(model.features["crop_margin"])) if points is None else points
    parts = torch.from_numpy(moving_parts(points, source_crop.shape[0], strength))[None, None]
    return parts.to(next(model.generator.parameters()).device)


class PhotoMouth:
    """The mouth layer's conditioning for one photo: `model.mouth`'s opening of each frame's speech, the
    photo's mouth (its crop's `points`) opened to it at `mouth_strength` (None: the model's calibrated one)."""

    def __init__(self, model: TalkingFaceModel, points: np.ndarray, size: int, mouth_strength: float | None = None):
        if model.mouth is None:
            raise ValueError("the model has no mouth layer (it was trained without mouth_opening)")
        self.opening, self.size = model.mouth, size
        self.shape = MouthShape.from_landmarks(points)
        self.strength = model.mouth_strength if mouth_strength is None else check_mouth_strength(mouth_strength)
        self.device = next(model.generator.parameters()).device

    def __call__(self, frames_audio: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{mouth_motion, mouth_alpha, mouth_colour} [N, C, S, S] for the N frames of `frames_audio`."""
        opening = self.opening(frames_audio["mel"], frames_audio["mfcc"]).cpu()
        layer = self.shape.layer(opening, self.size, self.strength)
        return {key: value.to(self.device) for key, value in zip(MOUTH_KEYS, layer)}
