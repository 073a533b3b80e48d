"""Multi-scale PatchGAN discriminator (pix2pixHD) with a CAM head (U-GAT-IT) at every scale.

    discriminator = MultiScaleDiscriminator(DiscriminatorConfig())     # or a plain dict
    outputs = discriminator(image, source)     # image, source [B,3,S,S] in [-1,1]
    outputs[k].patch [B,1,h,w] real/fake logits per patch at scale k (k = 0 is full resolution)
    outputs[k].cam_logit [B,2]   the CAM head's real/fake logits (GAP, GMP) for the CAM loss (eq. 3)
    outputs[k].features          list of intermediate maps for the feature-matching loss
    outputs[k].attention [B,1,h,w]

The frame is judged together with the identity photo (6 input channels), as pix2pixHD conditions its
discriminator on the input map: a sharp face of the wrong person is then still "fake". Scales are made by
3x3 average pooling with stride 2 between them, as in pix2pixHD.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from talking_face.models.cam import CAMLayer
from talking_face.models.config import DiscriminatorConfig, as_config


class ScaleOutput(NamedTuple):
    patch: torch.Tensor
    cam_logit: torch.Tensor
    features: list[torch.Tensor]
    attention: torch.Tensor


class PatchDiscriminator(nn.Module):
    """n_layers stride-2 4x4 convs, one stride-1 conv, a CAM layer, then a 1-channel patch conv."""

    def __init__(self, in_channels: int, config: DiscriminatorConfig):
        super().__init__()

        def conv(c_in: int, c_out: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, 4, stride, padding=1)
            return spectral_norm(layer) if config.spectral_norm else layer

        widths = [min(config.base_channels * 2**n, config.max_channels) for n in range(config.n_layers + 1)]
        groups = [nn.Sequential(conv(in_channels, widths[0], 2), nn.LeakyReLU(0.2))]
        for n in range(1, config.n_layers + 1):
            stride = 2 if n < config.n_layers else 1
            groups.append(
                nn.Sequential(conv(widths[n - 1], widths[n], stride), nn.InstanceNorm2d(widths[n]), nn.LeakyReLU(0.2))
            )
        self.groups = nn.ModuleList(groups)
        self.cam = CAMLayer(widths[-1])
        self.to_patch = conv(widths[-1], 1, 1)

    def forward(self, x: torch.Tensor) -> ScaleOutput:
        features = []
        for group in self.groups:
            x = group(x)
            features.append(x)
        x, cam_logit, attention = self.cam(x)
        return ScaleOutput(self.to_patch(x), cam_logit, features, attention)


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig | dict[str, Any] | None = None):
        super().__init__()
        self.config = config = as_config(DiscriminatorConfig, config)
        self.scales = nn.ModuleList(PatchDiscriminator(6, config) for _ in range(config.n_scales))

    def forward(self, image: torch.Tensor, source: torch.Tensor) -> list[ScaleOutput]:
        if image.shape != source.shape or image.shape[1] != 3:
            raise ValueError(f"image and source must both be [B,3,H,W], got {list(image.shape)}, {list(source.shape)}")
        smallest = min(image.shape[-2:]) // 2 ** (len(self.scales) - 1 + self.config.n_layers)
        if smallest < 3:  # the last stride-1 conv and its instance norm need at least 2x2 outputs
            raise ValueError(
                f"images of {list(image.shape[-2:])} are too small for {len(self.scales)} scales of "
                f"{self.config.n_layers} stride-2 layers"
            )
        x = torch.cat([image, source], 1)
        outputs = []
        for index, scale in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs
