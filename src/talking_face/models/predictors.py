"""Motion predictors for the MAN motion source, and the differentiable warp used by the flow loss.

    keypoints = KeypointPredictor(PredictorConfig())   # or a plain dict
    heatmaps = keypoints(frames, mel)      # frames [B,15,S,S] (previous 5 RGB frames), mel [B,K,256]
                                           # -> [B,15,96,96] raw heatmaps (targets: features' heatmaps / 255)
    flow_net = FlowPredictor(PredictorConfig())
    flow = flow_net(frames, mel)           # -> [B,2,S,S] flow in pixels from the last frame to the next one
    warp(image, flow)                      # samples image at p + flow(p) (grid_sample, bilinear)

Frames are RGB in [-1,1], oldest first, stacked on channels; K = config.audio_window. The mel window has
no spatial layout, so a Linear maps it to a few values broadcast as constant planes and concatenated with
the frames along channels (the paper's "concatenated"), letting every convolution see the audio cheaply.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from talking_face.features.schema import HEATMAP_SIZE, N_HEATMAPS, N_MEL
from talking_face.models.config import PredictorConfig, as_config


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(math.gcd(8, c_out), c_out), nn.LeakyReLU(0.2),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(math.gcd(8, c_out), c_out), nn.LeakyReLU(0.2),
    )  # fmt: skip


def contiguous(output: torch.Tensor) -> torch.Tensor:
    # Channels-last weights (`TalkingFaceModel.eval`) give channels-last outputs, which slow the convolutions
    # of the generator's motion branches that read them; they get the default layout.
    return output.contiguous()


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = _conv_block(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Hourglass(nn.Module):
    """Newell et al.'s hourglass, simplified: pool, recurse, upsample, plus a residual skip at every scale."""

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.skip = Residual(channels)
        self.down = Residual(channels)
        self.inner = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels)
        self.up = Residual(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.skip(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


class ContextInput(nn.Module):
    """Previous frames [B,3n,H,W] + mel window [B,K,256] -> [B,3n+m,H,W]."""

    def __init__(self, config: PredictorConfig):
        super().__init__()
        self.frame_channels = 3 * config.context_frames
        self.window = config.audio_window
        self.mel = nn.Linear(config.audio_window * N_MEL, config.mel_channels)
        self.channels = self.frame_channels + config.mel_channels

    def forward(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        mel = mel.unsqueeze(1) if mel.dim() == 2 else mel
        if frames.dim() != 4 or frames.shape[1] != self.frame_channels:
            raise ValueError(f"frames must be [B,{self.frame_channels},H,W], got {list(frames.shape)}")
        if mel.shape[1:] != (self.window, N_MEL):
            raise ValueError(f"mel must be [B,{self.window},{N_MEL}] (the audio_window), got {list(mel.shape)}")
        planes = self.mel(mel.flatten(1).to(frames.dtype))[:, :, None, None]
        return torch.cat([frames, planes.expand(-1, -1, *frames.shape[-2:])], 1)


class KeypointPredictor(nn.Module):
    """Hourglass: previous frames + mel -> 15 keypoint-contour heatmaps at 96x96."""

    def __init__(self, config: PredictorConfig | dict[str, Any] | None = None):
        super().__init__()
        self.config = config = as_config(PredictorConfig, config)
        width = config.base_channels
        self.context = ContextInput(config)
        self.stem = _conv_block(self.context.channels, width)
        self.hourglass = Hourglass(config.depth, width)
        # Raw (linear) output as in Newell et al.: a sigmoid would starve the mostly-zero background of gradient.
        self.head = nn.Sequential(Residual(width), nn.Conv2d(width, N_HEATMAPS, 1))

    def forward(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        if frames.shape[-2:] != (HEATMAP_SIZE, HEATMAP_SIZE):
            frames = F.interpolate(frames, size=(HEATMAP_SIZE, HEATMAP_SIZE), mode="bilinear", antialias=True)
        return contiguous(self.head(self.hourglass(self.stem(self.context(frames, mel)))))


class FlowPredictor(nn.Module):
    """UNet: previous frames + mel -> flow [B,2,S,S] (pixels) from the last frame to the next one."""

    def __init__(self, config: PredictorConfig | dict[str, Any] | None = None):
        super().__init__()
        self.config = config = as_config(PredictorConfig, config)
        widths = [config.base_channels * 2**n for n in range(config.depth + 1)]
        self.context = ContextInput(config)
        self.encoder = nn.ModuleList(
            _conv_block(c_in, c_out) for c_in, c_out in zip([self.context.channels] + widths[:-1], widths)
        )
        self.decoder = nn.ModuleList(_conv_block(widths[n + 1] + widths[n], widths[n]) for n in range(config.depth))
        self.head = nn.Conv2d(widths[0], 2, 1)
        nn.init.zeros_(self.head.weight)  # start from zero flow: the warp begins as the identity
        nn.init.zeros_(self.head.bias)

    def forward(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        if frames.shape[-1] % 2**self.config.depth or frames.shape[-2] % 2**self.config.depth:
            raise ValueError(f"flow predictor input size {list(frames.shape[-2:])} must divide by 2^{self.config.depth}")
        x = self.context(frames, mel)
        skips = []
        for index, block in enumerate(self.encoder):
            x = block(F.max_pool2d(x, 2) if index else x)
            skips.append(x)
        for index in reversed(range(self.config.depth)):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.decoder[index](torch.cat([x, skips[index]], 1))
        return contiguous(self.head(x))


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: out(p) = image(p + flow(p)); flow [B,2,H,W] in pixels, channel 0 = x, 1 = y."""
    height, width = image.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=flow.dtype, device=flow.device),
        torch.arange(width, dtype=flow.dtype, device=flow.device),
        indexing="ij",
    )
    # Pixel centres in grid_sample's align_corners=False units: exact in floats for power-of-2 sides, so a
    # zero flow returns the image bit for bit.
    x = (2 * (xs + flow[:, 0]) + 1) / width - 1
    y = (2 * (ys + flow[:, 1]) + 1) / height - 1
    grid = torch.stack([x, y], dim=-1).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
