"""Where and how the face may change at generation time, from the source photo's landmarks: its moving parts
(eyes, mouth and chin, `features.parts`), which cap the composite head's mask of a model trained with
`mask_region: parts`, and its mouth and eyes, which the model's part layers open by the speech
(`models.mouth`) and close for blinks (`models.eyelids`)."""

from __future__ import annotations

import numpy as np
import torch

from talking_face.conditioning.bundle import TalkingFaceModel, check_mouth_strength
from talking_face.features.parts import moving_parts
from talking_face.models.eyelids import EyelidShape
from talking_face.models.layer import LAYER_KEYS, merge
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


class PhotoLayers:
    """The composite head's part layers for one photo (`models.layer`): its mouth opened by `model.mouth`'s
    reading of each frame's speech at `mouth_strength` (None: the model's calibrated one), and, for a model
    with `eyelids`, its lids lowered by each frame's blink closure. `points` are the crop's landmarks."""

    def __init__(
        self, model: TalkingFaceModel, crop: np.ndarray, points: np.ndarray, mouth_strength: float | None = None
    ):
        self.opening, self.size = model.mouth, crop.shape[0]
        self.mouth = MouthShape.from_landmarks(points) if model.mouth is not None else None
        self.eyelids = EyelidShape.from_landmarks(points, crop) if model.eyelids else None
        self.strength = model.mouth_strength if mouth_strength is None else check_mouth_strength(mouth_strength)
        self.device = next(model.generator.parameters()).device

    def __call__(self, frames_audio: dict[str, torch.Tensor], closure: np.ndarray) -> dict[str, torch.Tensor]:
        """{layer_motion, layer_alpha, layer_colour} [N, C, S, S] for the N frames of `frames_audio`, whose
        eye closures are `closure` [N]."""
        layers = []
        if self.mouth is not None:
            opening = self.opening(frames_audio["mel"], frames_audio["mfcc"]).cpu()
            layers.append(self.mouth.layer(opening, self.size, self.strength))
        if self.eyelids is not None and np.any(closure):
            layers.append(self.eyelids.layer(torch.from_numpy(np.asarray(closure, np.float32)), self.size))
        if not layers:  # open eyes and no mouth layer: the photo as it is
            return {}
        return {key: value.to(self.device) for key, value in zip(LAYER_KEYS, merge(layers))}
