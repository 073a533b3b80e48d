"""Where the face may change at generation time: the moving parts (eyes, mouth and chin, `features.parts`)
of the source photo, which cap the composite head's mask of a model trained with `mask_region: parts`."""

from __future__ import annotations

import numpy as np
import torch

from talking_face.conditioning.bundle import TalkingFaceModel, check_mouth_strength
from talking_face.features.parts import moving_parts
from talking_face.serving.blinks import crop_landmarks


def source_parts(
    model: TalkingFaceModel, source_crop: np.ndarray, mouth_strength: float | None = None
) -> torch.Tensor | None:
    """The moving parts of `source_crop` (uint8 [S, S, 3], cropped as in training) as a [1, 1, S, S] map on
    the model's device, the mouth region at `mouth_strength` (None: the model's calibrated one), or None for a
    model whose mask they do not cap."""
    if not model.generator.limits_mask:
        return None
    strength = model.mouth_strength if mouth_strength is None else check_mouth_strength(mouth_strength)
    points = crop_landmarks(source_crop, float(model.features["crop_margin"]))
    parts = torch.from_numpy(moving_parts(points, source_crop.shape[0], strength))[None, None]
    return parts.to(next(model.generator.parameters()).device)
