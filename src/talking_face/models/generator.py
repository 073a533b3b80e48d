"""The MAN generator: MFCC seed -> 8 MAN ResNet blocks with upsampling -> CAM layer -> output head.

    generator = MANGenerator(GeneratorConfig())          # or a plain dict, or model_config("cpu").generator
    out = generator(conditioning)
    out.image [B,3,S,S] in [-1,1], out.cam_logit [B,2], out.attention [B,1,S,S]
    out.mask [B,1,S,S] in [0,1], out.motion [B,2,S,S] (pixels), out.painted [B,3,S,S] in [-1,1]

Output heads (config.output). "composite" (the default): the last features give a soft mask, a dense
motion field and painted pixels (the warped source plus a predicted change), and the frame is
mask * painted + (1 - mask) * warp(source, motion), so where nothing moves the frame is the photo itself and
the network only paints what the photo lacks (inside the mouth, eyelids), as vid2vid's occlusion-masked
warping and GANimation's attention mask. The change and the motion start at exactly zero: an untrained
generator returns the source. "direct": the
paper's head, the frame is the painted RGB (mask all ones, motion zero).

`conditioning` (one sample per row, S = config.image_size, K = config.audio_window):
    "source"  [B,3,S,S]    the identity photo in [-1,1]
    "motion"  [B,2,S,S]    predicted flow (man.motion == "flow") or [B,15,S,S] keypoint heatmaps
    "eyes"    [B,1,S,S]    eye closure map: blobs on the source's eyes scaled by the closure (features.eyes)
    "layer_motion" [B,2,S,S], "layer_alpha" [B,1,S,S], "layer_colour" [B,3,S,S]: optional, a part layer
              (models.layer): the source's mouth opened to what the speech asks for (models.mouth) and its lids
              lowered for a blink (models.eyelids), before the head composes
    "mel"     [B,K,256]    log-mel window;  "pitch", "energy": [B,K,256] one-hot windows
    "mfcc"    [B,K,13]     ([B,13] when K == 1): enters the first layers
Only the keys of the enabled MAN sources are read, plus "source" and "mfcc" which the seed always uses.

Layout: an MLP turns the MFCC window into a small spatial tensor (seed_size^2) concatenated with a
thumbnail of the source image and fused by a 3x3 conv; the identity itself reaches every block through the
image MAN source. Blocks run at seed_size until the n_up = log2(S / seed_size) upsamplings (nearest, x2)
that follow blocks n-1-n_up .. n-2, so only the last block runs at S (as SPADE's last block; full-size
blocks dominate the cost). The CAM layer comes right before that last block: the third-last layer, counting
the output conv, with its attention map at full resolution.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from talking_face.models.cam import CAMLayer
from talking_face.models.config import CONDITION_KEYS, GeneratorConfig, as_config
from talking_face.models.man import MANResBlock
from talking_face.models.layer import LAYER_KEYS, PartLayer
from talking_face.models.predictors import warp


MASK_START = 0.5  # the composite mask's value everywhere at initialisation (the painted change starts at zero)


class GeneratorOutput(NamedTuple):
    image: torch.Tensor  # the frame
    cam_logit: torch.Tensor
    attention: torch.Tensor
    mask: torch.Tensor  # where painted pixels replace the (warped) source
    motion: torch.Tensor  # backward flow in pixels warping the source: frame(p) ~ source(p + motion(p))
    painted: torch.Tensor  # the network's own pixels


def composite(painted: torch.Tensor, mask: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """mask * painted + (1 - mask) * warped: the painted pixels where the mask is on, the warped photo elsewhere."""
    return mask * painted + (1 - mask) * warped


class CompositeHead(nn.Module):
    """Last features + source -> soft mask [B,1,S,S], motion [B,2,S,S] in pixels, the source warped by it
    and painted pixels [B,3,S,S].

    The painted pixels are the warped source plus a predicted change, so the network paints only what differs
    from the photo (an open mouth, shut lids) instead of re-drawing the identity at its own blur. The motion
    (tanh-bounded to `limit` pixels) is scaled by the mask: where the mask is off the photo is kept pixel for
    pixel, not resampled (a sub-pixel warp blurs a sharp photo). At the start the change and the motion are
    zero, so the frame is the photo whatever the mask. A `region` [B,1,S,S] in [0, 1] caps the mask: head
    motion cannot be told from speech, and a mask free to open on the hairline and the cheeks learns to blur
    them against it, which a new face pays for in sharpness.

    A part `layer` (models.layer.PartLayer) changes the source first (its mouth opened, its lids lowered):
    the head warps and paints on that. What comes back then describes the whole frame for paste-back at the
    photo's resolution: the two motions summed (small, so composing them is close to adding them), the mask
    covering the painted interior too, and the frame itself as the painted pixels there."""

    def __init__(self, channels: int, limit: float):
        super().__init__()
        self.limit = limit
        self.to_mask = nn.Conv2d(channels, 1, 3, padding=1)
        self.to_motion = nn.Conv2d(channels, 2, 3, padding=1)
        self.to_change = nn.Conv2d(channels, 3, 3, padding=1)
        with torch.no_grad():
            self.to_mask.weight.mul_(0.1)
            self.to_mask.bias.fill_(math.log(MASK_START / (1 - MASK_START)))
            for conv in (self.to_motion, self.to_change):
                conv.weight.zero_()
                conv.bias.zero_()

    def forward(
        self, features: torch.Tensor, source: torch.Tensor, region: torch.Tensor | None = None,
        layer: PartLayer | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """mask, motion, painted and the composed frame."""
        mask = torch.sigmoid(self.to_mask(features))
        if region is not None:
            mask = mask * region.to(mask.dtype)
        if layer is not None:
            source = composite(layer.colour.to(source.dtype), layer.alpha.to(source.dtype), warp(source, layer.motion))
        motion = mask * self.limit * torch.tanh(self.to_motion(features))
        warped = warp(source, motion)
        painted = (warped + 2 * torch.tanh(self.to_change(features))).clamp(-1, 1)
        image = composite(painted, mask, warped)
        if layer is not None:
            painted = composite(image, layer.alpha, painted)
            mask, motion = torch.maximum(mask, layer.alpha), motion + layer.motion
        return mask, motion, painted, image


class MFCCSeed(nn.Module):
    """MFCC window [B,K,13] + source [B,3,S,S] -> seed features [B,C,s,s]."""

    def __init__(self, n_inputs: int, channels: int, seed_size: int):
        super().__init__()
        self.seed_size = seed_size
        self.planes = min(channels, 64)  # few planes from the MLP keep its weight matrix small at 256x256
        self.mlp = nn.Sequential(
            nn.Linear(n_inputs, 256), nn.LeakyReLU(0.2), nn.Linear(256, self.planes * seed_size * seed_size)
        )
        self.fuse = nn.Conv2d(self.planes + 3, channels, 3, padding=1)

    def forward(self, mfcc: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        audio = self.mlp(mfcc.flatten(1)).view(-1, self.planes, self.seed_size, self.seed_size)
        thumbnail = F.adaptive_avg_pool2d(source, self.seed_size)
        return self.fuse(torch.cat([audio, thumbnail], 1))


class MANGenerator(nn.Module):
    def __init__(self, config: GeneratorConfig | dict[str, Any] | None = None):
        super().__init__()
        self.config = config = as_config(GeneratorConfig, config)
        channels = [config.base_channels * m for m in config.channel_multipliers]
        n_blocks = len(channels)
        n_up = (config.image_size // config.seed_size).bit_length() - 1
        self.upsample_after = set(range(n_blocks - 1 - n_up, n_blocks - 1))
        self.seed = MFCCSeed(config.n_mfcc * config.audio_window, channels[0], config.seed_size)
        self.blocks = nn.ModuleList(
            MANResBlock(c_in, c_out, config.man) for c_in, c_out in zip([channels[0]] + channels[:-1], channels)
        )
        self.cam = CAMLayer(channels[-2])
        if config.output == "composite":
            self.composite_head = CompositeHead(channels[-1], config.motion_limit * config.image_size)
        else:
            self.to_rgb = nn.Conv2d(channels[-1], 3, 3, padding=1)

    @property
    def conditioning_keys(self) -> tuple[str, ...]:
        """The conditioning entries this generator reads."""
        video_audio = tuple(CONDITION_KEYS[s] for s in self.config.man.enabled if CONDITION_KEYS[s] != "source")
        return ("source", "mfcc", *video_audio, *(("parts",) if self.limits_mask else ()))

    @property
    def limits_mask(self) -> bool:
        """Whether the composite mask is capped by the source's moving parts (conditioning "parts")."""
        return self.config.output == "composite" and self.config.mask_region == "parts"

    def _check(self, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
        size, window = self.config.image_size, self.config.audio_window
        source = conditioning["source"]
        if source.dim() != 4 or source.shape[1:] != (3, size, size):
            raise ValueError(f"conditioning 'source' must be [B,3,{size},{size}], got {list(source.shape)}")
        if self.limits_mask and "parts" not in conditioning:
            raise ValueError("conditioning 'parts' [B,1,S,S] (the source's moving parts) is required: mask_region is 'parts'")
        mfcc = conditioning["mfcc"]
        mfcc = mfcc.unsqueeze(1) if mfcc.dim() == 2 else mfcc
        if mfcc.shape[1:] != (window, self.config.n_mfcc):
            raise ValueError(
                f"conditioning 'mfcc' must be [B,{window},{self.config.n_mfcc}] (the generator's audio_window), "
                f"got {list(conditioning['mfcc'].shape)}"
            )
        return mfcc

    def forward(self, conditioning: dict[str, torch.Tensor]) -> GeneratorOutput:
        mfcc = self._check(conditioning)
        x = self.seed(mfcc.to(conditioning["source"].dtype), conditioning["source"])
        cam_logit = attention = None
        for index, block in enumerate(self.blocks):
            if index == len(self.blocks) - 1:
                x, cam_logit, attention = self.cam(x)
            x = block(x, conditioning)
            if index in self.upsample_after:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        features = F.leaky_relu(x, 0.2)
        if self.config.output == "direct":
            painted = torch.tanh(self.to_rgb(features))
            mask, motion = torch.ones_like(painted[:, :1]), torch.zeros_like(painted[:, :2])
            return GeneratorOutput(painted, cam_logit, attention, mask, motion, painted)
        source = conditioning["source"].to(features.dtype)
        region = conditioning["parts"] if self.limits_mask else None
        layer = PartLayer(*(conditioning[key] for key in LAYER_KEYS)) if LAYER_KEYS[0] in conditioning else None
        mask, motion, painted, image = self.composite_head(features, source, region, layer)
        return GeneratorOutput(image, cam_logit, attention, mask, motion, painted)
