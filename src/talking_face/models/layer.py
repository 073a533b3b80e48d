"""The composite head's explicit layers: what the source photo becomes before the head warps and paints on it.

    layer = PartLayer(motion, alpha, colour)     # [N,2,S,S] backward flow in pixels, [N,1,S,S], [N,3,S,S]
    both = merge([mouth_layer, eyelid_layer])   # parts that do not overlap: motions add, paint where each is

The generator reads a layer from its conditioning under LAYER_KEYS (models.generator.CompositeHead).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

LAYER_KEYS = ("layer_motion", "layer_alpha", "layer_colour")  # the conditioning entries of a PartLayer


class PartLayer(NamedTuple):
    motion: torch.Tensor  # [N, 2, S, S] backward flow (x, y) in pixels: frame(p) = photo(p + motion(p))
    alpha: torch.Tensor  # [N, 1, S, S] in [0, 1]: where `colour` is painted
    colour: torch.Tensor  # [N, 3, S, S] in [-1, 1]


def pixel_grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ys, xs) [S, S]: each pixel's row and column on a size x size crop."""
    side = torch.arange(size, dtype=torch.float32)
    return torch.meshgrid(side, side, indexing="ij")


def merge(layers: list[PartLayer]) -> PartLayer:
    """One layer of several on separate parts of the face: their motions summed, each one's paint where it is."""
    motion = sum(layer.motion for layer in layers)
    alpha = torch.stack([layer.alpha for layer in layers]).amax(0)
    weight = sum(layer.alpha for layer in layers).clamp_min(1e-6)
    colour = sum(layer.alpha * layer.colour for layer in layers) / weight
    return PartLayer(motion, alpha, colour)
