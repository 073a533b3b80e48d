"""Multi-modal adaptive normalization (MAN, the paper's equations 1-2) and the MAN ResNet block.

    block = MANBlock(norm_channels=64, config=MANConfig())
    y = block(x, conditioning)          # x [B,64,h,w] -> y [B,64,h,w]
    block.rho()                         # {"image": 0.2, "motion": 0.2, ...} over the active sources

y = sum_i rho_i * ((1 + gamma_i) * IN(x) + beta_i), IN without affine, rho = softmax of learned logits over
the active sources. Video sources (image [B,3,S,S], motion [B,2|15,S,S], eyes [B,1,S,S]) give spatial gamma/beta maps
(SPADE: the input resized to the feature map, a shared conv, then a gamma and a beta conv); audio sources
(mel, pitch one-hot, energy one-hot, each [B,K,256]) give per-channel gamma/beta broadcast over space.
`conditioning` maps the keys in `config.CONDITION_KEYS` to tensors; an optional "<key>_mask" [B,1,S,S]
marks valid pixels for the partial-convolution branch.

Sources left out of `MANConfig.enabled` get no branch at all (the Table 3 ablation, safe under DDP);
`set_active_sources` switches built sources off at run time (for analysis: rho renormalizes over the rest,
and the switched-off branches get no gradient, so do not train DDP that way).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from talking_face.models.config import AUDIO_FEATURES, CONDITION_KEYS, VIDEO_SOURCES, MANConfig


class PartialConv2d(nn.Conv2d):
    """Partial convolution (Liu et al. 2018): convolve valid pixels only, rescaled by the valid-tap count."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            taps = torch.ones(1, 1, *self.kernel_size, dtype=mask.dtype, device=mask.device)
            valid = F.conv2d(mask, taps, stride=self.stride, padding=self.padding, dilation=self.dilation)
            new_mask = (valid > 0).to(x.dtype)
            scale = (taps.numel() / valid.clamp(min=1)).to(x.dtype) * new_mask
        out = F.conv2d(x * mask.to(x.dtype), self.weight, None, self.stride, self.padding, self.dilation) * scale
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * new_mask
        return out, new_mask


class EfficientChannelAttention(nn.Module):
    """ECA (Wang et al. 2020): global average pool, a 1D conv across channels, sigmoid gate."""

    def __init__(self, channels: int):
        super().__init__()
        width = int(abs(math.log2(channels) / 2 + 0.5))
        width += 1 - width % 2  # odd kernel, adaptive to the channel count as in the ECA paper
        self.conv = nn.Conv1d(1, 1, width, padding=width // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.conv(x.mean((2, 3)).unsqueeze(1))).squeeze(1)
        return x * gate[:, :, None, None]


def _resize(tensor: torch.Tensor, size: torch.Size) -> torch.Tensor:
    # Conditioning comes at the output size S >= every feature map: area averaging keeps it alias-free.
    return tensor if tensor.shape[-2:] == size else F.adaptive_avg_pool2d(tensor, size)


class SpatialBranch(nn.Module):
    """Video source [B,in,S,S] -> gamma, beta [B,C,h,w]; `kind` is conv2d, partial_conv2d or conv2d_eca."""

    def __init__(self, in_channels: int, norm_channels: int, hidden: int, kind: str):
        super().__init__()
        self.kind = kind
        conv = PartialConv2d if kind == "partial_conv2d" else nn.Conv2d
        self.shared = conv(in_channels, hidden, 3, padding=1)
        self.attention = EfficientChannelAttention(hidden) if kind == "conv2d_eca" else nn.Identity()
        self.gamma = nn.Conv2d(hidden, norm_channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, norm_channels, 3, padding=1)

    def forward(self, source: torch.Tensor, size: torch.Size, mask: torch.Tensor | None = None):
        source = _resize(source, size)
        if isinstance(self.shared, PartialConv2d):
            # The paper gives no hole mask; all ones makes it partial-convolution padding (border taps
            # renormalised); a "<key>_mask" (e.g. crop area outside the video frame) excludes those pixels.
            mask = torch.ones_like(source[:, :1]) if mask is None else (_resize(mask, size) > 0.5).to(source.dtype)
            hidden, _ = self.shared(source, mask)
        else:
            hidden = self.shared(source)
        hidden = self.attention(F.relu(hidden))
        return self.gamma(hidden), self.beta(hidden)


class WeightedSpatialBranch(nn.Module):
    """A conv2d SpatialBranch's outputs times `weight`, its gamma and beta convs run as one convolution (a call
    fewer per block and frame): gamma, beta as `weight * branch(...)` gives them, up to float rounding."""

    def __init__(self, branch: SpatialBranch, weight: float):
        super().__init__()
        if branch.kind != "conv2d":
            raise ValueError(f"only a conv2d SpatialBranch can be merged, not {branch.kind}")
        self.shared = branch.shared
        # Tensors, not a new Conv2d: its random initialisation cost more than the rest of a session's start.
        with torch.no_grad():
            self.register_buffer("out_weight", weight * torch.cat([branch.gamma.weight, branch.beta.weight]))
            self.register_buffer("out_bias", weight * torch.cat([branch.gamma.bias, branch.beta.bias]))

    def forward(self, source: torch.Tensor, size: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.relu(self.shared(_resize(source, size)))
        return F.conv2d(hidden, self.out_weight, self.out_bias, padding=1).chunk(2, 1)


class TemporalBranch(nn.Module):
    """Audio window [B,K,F] (or [B,F]) -> per-channel gamma, beta [B,C,1,1]; `kind` is conv1d or lstm."""

    def __init__(self, in_features: int, norm_channels: int, hidden: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "lstm":
            self.encoder = nn.LSTM(in_features, hidden, batch_first=True)
        else:
            self.encoder = nn.Sequential(
                nn.Conv1d(in_features, hidden, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv1d(hidden, hidden, 3, padding=1)
            )
        self.gamma = nn.Linear(hidden, norm_channels)
        self.beta = nn.Linear(hidden, norm_channels)

    def forward(self, window: torch.Tensor):
        window = window.to(self.gamma.weight.dtype)  # one-hot pitch/energy may arrive as uint8
        if window.dim() == 2:
            window = window.unsqueeze(1)
        if self.kind == "lstm":
            summary = self.encoder(window)[1][0][-1]  # last hidden state after the K frames
        else:
            summary = self.encoder(window.transpose(1, 2)).mean(2)
        summary = F.leaky_relu(summary, 0.2)
        return self.gamma(summary)[:, :, None, None], self.beta(summary)[:, :, None, None]


class StackedTemporalBranches(nn.Module):
    """Many conv1d TemporalBranches that read the same input, run as one: their first convs side by side, their
    second convs as one grouped conv, their gamma and beta layers as one batched matrix product (zero-padded to
    the widest), each branch's outputs scaled by its entry of `weights`. -> gamma, beta [B, sum of their C]: the
    branches' own rows in order, up to float rounding (hundreds of tiny layers cost far more in call overhead
    than in work)."""

    def __init__(self, branches: list[TemporalBranch], weights: list[float]):
        super().__init__()
        first = [branch.encoder[0] for branch in branches]
        second = [branch.encoder[2] for branch in branches]
        n, hidden = len(branches), first[0].out_channels
        sizes = [branch.gamma.out_features for branch in branches]
        widest = max(sizes)
        # Tensors, not new layers: their random initialisation cost more than the rest of a session's start.
        # Branch i's gamma in columns [0, C_i) of its slice of out_weight, its beta in [widest, widest + C_i).
        like = {"dtype": first[0].weight.dtype, "device": first[0].weight.device}
        with torch.no_grad():
            for name, convs in (("first", first), ("second", second)):
                self.register_buffer(f"{name}_weight", torch.cat([conv.weight for conv in convs]))
                self.register_buffer(f"{name}_bias", torch.cat([conv.bias for conv in convs]))
            self.register_buffer("out_weight", torch.zeros(n, hidden, 2 * widest, **like))
            self.register_buffer("out_bias", torch.zeros(n, 1, 2 * widest, **like))
            for i, (branch, weight, size) in enumerate(zip(branches, weights, sizes)):
                for offset, linear in ((0, branch.gamma), (widest, branch.beta)):
                    self.out_weight[i, :, offset : offset + size] = weight * linear.weight.T
                    self.out_bias[i, 0, offset : offset + size] = weight * linear.bias
        starts = [2 * widest * i for i in range(n)]
        columns = torch.cat([torch.arange(s, s + c) for s, c in zip(starts, sizes)]).to(like["device"])
        self.register_buffer("gamma_columns", columns)
        self.register_buffer("beta_columns", self.gamma_columns + widest)

    def forward(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        window = window.to(self.out_weight.dtype)
        if window.dim() == 2:
            window = window.unsqueeze(1)
        hidden = F.leaky_relu(F.conv1d(window.transpose(1, 2), self.first_weight, self.first_bias, padding=1), 0.2)
        hidden = F.conv1d(hidden, self.second_weight, self.second_bias, padding=1, groups=len(self.out_weight))
        summary = F.leaky_relu(hidden.mean(2), 0.2)  # [B, n * hidden]
        per_branch = summary.view(len(summary), len(self.out_weight), -1).transpose(0, 1)  # [n, B, hidden]
        out = torch.baddbmm(self.out_bias, per_branch, self.out_weight).transpose(0, 1).flatten(1)
        return out[:, self.gamma_columns], out[:, self.beta_columns]


class MANBlock(nn.Module):
    """Equation 1-2 over the sources in `config.enabled`; `rho()` reports the softmax weights."""

    def __init__(self, norm_channels: int, config: MANConfig):
        super().__init__()
        self.norm = nn.InstanceNorm2d(norm_channels, affine=False)
        self.sources = tuple(config.enabled)
        self.active = self.sources
        self.branches = nn.ModuleDict()
        for source in self.sources:
            kind = config.branches[source]
            if source in VIDEO_SOURCES:
                in_channels = config.video_channels(source)
                self.branches[source] = SpatialBranch(in_channels, norm_channels, config.hidden_channels, kind)
            else:
                self.branches[source] = TemporalBranch(AUDIO_FEATURES[source], norm_channels, config.hidden_channels, kind)
        self.logits = nn.Parameter(torch.zeros(len(self.sources)))

    def set_active(self, sources: Iterable[str]) -> None:
        sources = tuple(s for s in self.sources if s in set(sources))
        if not sources:
            raise ValueError(f"at least one of the built MAN sources {self.sources} must stay active")
        self.active = sources

    def weights(self) -> torch.Tensor:
        """rho over the active sources (softmax of their logits, so it renormalizes when one is off)."""
        return torch.softmax(self.logits[[self.sources.index(s) for s in self.active]], 0)

    def rho(self) -> dict[str, float]:
        return dict(zip(self.active, self.weights().detach().float().tolist()))

    def term(
        self, source: str, rho: torch.Tensor, conditioning: dict[str, torch.Tensor], size: torch.Size
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One source's rho * gamma and rho * beta for feature maps of `size`."""
        key = CONDITION_KEYS[source]
        if key not in conditioning:
            raise KeyError(f"conditioning has no {key!r}, needed by the active MAN source {source!r}")
        branch = self.branches[source]
        if source in VIDEO_SOURCES:
            gamma, beta = branch(conditioning[key], size, conditioning.get(f"{key}_mask"))
        else:
            gamma, beta = branch(conditioning[key])
        return rho * gamma, rho * beta

    def forward(self, x: torch.Tensor, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
        # SPADE's (1 + gamma): sum_i rho_i (1 + gamma_i) = 1 + sum_i rho_i gamma_i, so a fresh block starts
        # as a plain instance norm instead of zeroing the features; it is eq. 1 with gamma shifted by one.
        scale, shift = 1.0, 0.0
        for rho, source in zip(self.weights(), self.active):
            gamma, beta = self.term(source, rho, conditioning, x.shape[-2:])
            scale = scale + gamma
            shift = shift + beta
        return self.norm(x) * scale + shift


class MANResBlock(nn.Module):
    """MAN -> LeakyReLU -> 3x3 conv, twice; the shortcut is MAN + 1x1 conv when the channels change."""

    def __init__(self, in_channels: int, out_channels: int, config: MANConfig):
        super().__init__()
        middle = min(in_channels, out_channels)
        self.norm_0 = MANBlock(in_channels, config)
        self.conv_0 = nn.Conv2d(in_channels, middle, 3, padding=1)
        self.norm_1 = MANBlock(middle, config)
        self.conv_1 = nn.Conv2d(middle, out_channels, 3, padding=1)
        self.learned_shortcut = in_channels != out_channels
        if self.learned_shortcut:
            self.norm_s = MANBlock(in_channels, config)
            self.conv_s = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, conditioning)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, conditioning), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, conditioning), 0.2))
        return shortcut + dx


def man_blocks(module: nn.Module) -> Iterator[tuple[str, MANBlock]]:
    """Every MAN block inside `module` (a generator, possibly DDP-wrapped), with its qualified name."""
    for name, child in module.named_modules():
        if isinstance(child, MANBlock):
            yield name.removeprefix("module."), child


def rho_table(module: nn.Module) -> dict[str, dict[str, float]]:
    """{block name: {source: rho}} for logging which modality each block relies on."""
    return {name: block.rho() for name, block in man_blocks(module)}


def set_active_sources(module: nn.Module, sources: Iterable[str]) -> None:
    """Switch MAN sources on or off at run time in every block (rho renormalizes over those left)."""
    sources = tuple(sources)
    for _, block in man_blocks(module):
        block.set_active(sources)
