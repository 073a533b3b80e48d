"""The eyelid layer of the composite head: a blink drawn as the photo's upper lids coming down.

    lids = EyelidShape.from_landmarks(points, crop)     # the photo's eyes: 68 landmarks and the uint8 crop
    layer = lids.layer(closure, size=64)                # PartLayer for the blink schedule's closures [N] (0: open)

Why it exists: the generator's eye control learned to close the lids on the two GRID speakers it first
trained on, and no longer did once in-the-wild faces joined training (0 blinks on unseen people since).
The blink schedule (features.eyes) already says when and how far the eyes close; this layer paints it: over
each eye, from its upper lid down to where a lid closed that far would be, the colour of the photo's own lid
skin (the band just above the eye), with a dark lash line along the lowered edge. The lids follow each eye's
own tilt; nothing moves, so the photo's pixels stay sharp around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from talking_face.features.eyes import BLINK_DEPTH, LEFT_EYE, RIGHT_EYE
from talking_face.models.layer import PartLayer, pixel_grid

LASH_SHADE = 0.3  # the lash line's colour, as a fraction of the lid skin's
LASH_FROM = 0.15  # the closure from which the lash line shows (a lid lowered that far)
SKIN_BAND = (1.2, 2.4)  # the lid's skin colour: the photo's skin this many eye heights above and below the
                        # eye's centre, the brighter side (a shut lid is lit, the socket above it shaded)
LASH_WIDTH = 1.0  # pixels: a shut eye is a dark line of lashes above the lower lid
MARGIN = 1.0  # pixels the painted lid reaches beyond the landmarks' outline (the eye's dark rim)


@dataclass(frozen=True)
class Eye:
    centre: tuple[float, float]
    roll: float  # radians, the corners' line against the horizontal
    half_width: float  # corner to corner, halved
    upper: float  # the upper lid's height above the centre
    lower: float  # the lower lid's depth below it
    skin: tuple[float, float, float]  # the lid skin's colour in [-1, 1]


def eye_shape(points: np.ndarray, crop: np.ndarray) -> Eye:
    """One eye of 6 landmarks (dlib order: outer corner, two upper, inner corner, two lower) on `crop`."""
    left, right = points[0], points[3]
    roll = math.atan2(right[1] - left[1], right[0] - left[0])
    centre = points.mean(0)
    down = np.array([-math.sin(roll), math.cos(roll)])
    upper = max(float(-((points[[1, 2]] - centre) @ down).mean()), 0.5)
    lower = max(float(((points[[4, 5]] - centre) @ down).mean()), 0.5)
    height = upper + lower
    bands = []
    for side in (-1, 1):
        samples = np.array([centre + side * down * height * t for t in np.linspace(*SKIN_BAND, 4)])
        xs = np.clip(np.round(samples[:, 0]).astype(int), 0, crop.shape[1] - 1)
        ys = np.clip(np.round(samples[:, 1]).astype(int), 0, crop.shape[0] - 1)
        bands.append(crop[ys, xs].astype(np.float64).mean(0))
    skin = max(bands, key=lambda rgb: float(rgb.sum())) / 127.5 - 1
    return Eye((float(centre[0]), float(centre[1])), roll, max(float(np.linalg.norm(right - left)) / 2, 0.5),
               upper, lower, tuple(float(v) for v in skin))  # fmt: skip


@dataclass(frozen=True)
class EyelidShape:
    eyes: tuple[Eye, Eye]

    @classmethod
    def from_landmarks(cls, points: np.ndarray, crop: np.ndarray) -> EyelidShape:
        points = np.asarray(points, dtype=np.float64)
        return cls(tuple(eye_shape(points[eye], crop) for eye in (LEFT_EYE, RIGHT_EYE)))

    def layer(self, closure: torch.Tensor, size: int) -> PartLayer:
        """Both eyes' lids lowered for the blink schedule's `closure` [N]. The schedule counts closure as dlib
        reads it, and dlib reads a real shut eye at BLINK_DEPTH, so the lids cover closure / BLINK_DEPTH of
        the eye's opening: shut at a blink's peak."""
        closure = (closure.float().reshape(-1, 1, 1) / BLINK_DEPTH).clamp(0, 1)
        ys, xs = pixel_grid(size)
        alpha = torch.zeros(len(closure), size, size)
        colour = torch.zeros(len(closure), 3, size, size)
        for eye in self.eyes:
            cos, sin = math.cos(eye.roll), math.sin(eye.roll)
            dx, dy = xs - eye.centre[0], ys - eye.centre[1]
            along, down = dx * cos + dy * sin, -dx * sin + dy * cos
            reach = eye.half_width + MARGIN
            shape = (1 - (along / reach) ** 2).clamp_min(0)  # the lids meet at the corners
            top, bottom = -(eye.upper + MARGIN) * shape, (eye.lower + MARGIN / 2) * shape
            edge = top + closure * (bottom - LASH_WIDTH - top)  # where the lowered lid ends: shut, its lashes show
            covered = ((edge - down) + 0.5).clamp(0, 1) * ((down - top) + 1.0).clamp(0, 1) * (shape > 0)
            covered = covered * (closure * eye.half_width * 4).clamp(0, 1)  # nothing at all when open
            lash = ((1 - (edge - down).abs() / LASH_WIDTH) * (closure > LASH_FROM)).clamp(0, 1) * covered
            skin = torch.tensor(eye.skin, dtype=torch.float32).view(1, 3, 1, 1)
            shade = skin * (1 - lash[:, None]) + ((skin + 1) * LASH_SHADE - 1) * lash[:, None]
            colour = colour + covered[:, None] * shade
            alpha = torch.maximum(alpha, covered)
        colour = colour / alpha[:, None].clamp_min(1e-6)
        return PartLayer(torch.zeros(len(closure), 2, size, size), alpha[:, None], colour)
