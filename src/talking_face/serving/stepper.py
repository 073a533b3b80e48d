"""The generator run one frame at a time, with everything that does not depend on earlier frames computed
ahead. Each MAN block's scale and shift are a sum of per-source terms (`MANBlock.term`): the photo's is summed
once per source photo (the photo never changes), the audio sources' once per chunk of frames for every block
at once (`StackedTemporalBranches`: audio does not depend on what was generated), the MFCC seed per chunk in
one batched call, and the open eyes' (the all-zero map most frames have) once. Only the motion term, which
follows the previous generated frames, and the eyes' during a blink are computed per frame.

The per-frame network is a copy of the generator that shares its parameters (nothing is duplicated) with its
MAN blocks and seed swapped for stand-ins, so the rest runs the model's own forward code; it gives the plain
generator's output up to float rounding (sums taken in another order, batched calls).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from talking_face.models.config import AUDIO_SOURCES, CONDITION_KEYS
from talking_face.models.generator import GeneratorOutput, MANGenerator
from talking_face.models.man import (
    MANBlock, StackedTemporalBranches, TemporalBranch, WeightedSpatialBranch, man_blocks
)

class Rows(nn.Module):
    """Returns row `index` (kept as a batch of one) of outputs computed ahead for a chunk of frames."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.outputs: torch.Tensor | None = None
        self.index = 0

    def forward(self, *args):
        return self.outputs[self.index : self.index + 1]


class SteppedMAN(nn.Module):
    """A MAN block fed its audio terms per chunk (`audio`, rho-weighted gamma and beta sums [N, C, 1, 1]) and
    frame `index` of them per call; the photo's terms are summed on the first call, the open eyes' on the
    first frame with `eyes_open` set, and only the other video sources' terms are computed per call."""

    def __init__(self, block: MANBlock):
        super().__init__()
        self.block = block
        self.rho = dict(zip(block.active, block.weights().detach()))
        self.per_frame = [source for source in self.rho if source not in AUDIO_SOURCES and source != "image"]
        self.merged = nn.ModuleDict(
            {source: WeightedSpatialBranch(block.branches[source], self.rho[source]) for source in self.per_frame
             if block.branches[source].kind == "conv2d"}
        )  # fmt: skip
        self.audio: tuple[torch.Tensor, torch.Tensor] | None = None
        self.index = 0
        self.eyes_open = False
        self.photo: tuple[torch.Tensor, torch.Tensor] | None = None  # 1 + the photo's terms, and its shift
        self.photo_open_eyes: tuple[torch.Tensor, torch.Tensor] | None = None

    def _plus(self, base, sources, conditioning, size) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = base
        for source in sources:
            if source in self.merged:
                gamma, beta = self.merged[source](conditioning[CONDITION_KEYS[source]], size)
            else:
                gamma, beta = self.block.term(source, self.rho[source], conditioning, size)
            scale, shift = scale + gamma, shift + beta
        return scale, shift

    def forward(self, x: torch.Tensor, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
        size = x.shape[-2:]
        if self.photo is None:
            self.photo = self._plus((1.0, 0.0), [s for s in self.rho if s == "image"], conditioning, size)
        base, per_frame = self.photo, self.per_frame
        if self.eyes_open and "eyes" in per_frame:
            if self.photo_open_eyes is None:
                self.photo_open_eyes = self._plus(self.photo, ["eyes"], conditioning, size)
            base, per_frame = self.photo_open_eyes, [source for source in per_frame if source != "eyes"]
        if self.audio is not None:
            row = slice(self.index, self.index + 1)
            base = (base[0] + self.audio[0][row], base[1] + self.audio[1][row])
        scale, shift = self._plus(base, per_frame, conditioning, size)
        return self.block.norm(x) * scale + shift


class BranchByBranch(nn.Module):
    """StackedTemporalBranches' outputs for branches it cannot stack (LSTMs): each branch run on its own."""

    def __init__(self, branches: list[TemporalBranch], weights: list[torch.Tensor]):
        super().__init__()
        self.branches, self.weights = nn.ModuleList(branches), weights

    def forward(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        terms = [branch(window) for branch in self.branches]
        gamma = torch.cat([w * g.flatten(1) for w, (g, _) in zip(self.weights, terms)], 1)
        return gamma, torch.cat([w * b.flatten(1) for w, (_, b) in zip(self.weights, terms)], 1)


def audio_terms(blocks: list[SteppedMAN], source: str) -> nn.Module:
    """All `blocks`' rho-weighted terms of the audio `source`, as one module: window -> gamma, beta [N, sum C]."""
    branches = [block.block.branches[source] for block in blocks]
    weights = [block.rho[source] for block in blocks]
    if all(branch.kind == "conv1d" for branch in branches):
        return StackedTemporalBranches(branches, weights)
    return BranchByBranch(branches, weights)


def shared_copy(module: nn.Module) -> nn.Module:
    """A copy of `module`'s tree of submodules, whose submodules can be swapped without touching the original;
    everything else (parameters, buffers, settings) is the original's own objects. A deep copy with the
    tensors shared took 70 ms, most of a live session's start."""
    twin = copy.copy(module)
    twin._modules = {name: None if child is None else shared_copy(child) for name, child in module._modules.items()}
    return twin


class FrameStepper:
    """`generator` for one source image: `set_audio(chunk)` for each chunk of frames, then `step(i, ...)`."""

    def __init__(self, generator: MANGenerator, source: torch.Tensor):
        self.source = source
        self.network = shared_copy(generator)
        self.seed = Rows(self.network.seed)
        self.network.seed = self.seed
        self.blocks: list[SteppedMAN] = []
        for name, block in list(man_blocks(self.network)):
            parent, _, attribute = name.rpartition(".")
            stepped = SteppedMAN(block)
            setattr(self.network.get_submodule(parent), attribute, stepped)
            self.blocks.append(stepped)
        sources = [source for source in self.blocks[0].rho if source in AUDIO_SOURCES]
        self.audio_terms = [(CONDITION_KEYS[source], audio_terms(self.blocks, source)) for source in sources]
        self.sizes = [block.block.norm.num_features for block in self.blocks]

    def set_audio(self, audio: dict[str, torch.Tensor]) -> None:
        """Computes the audio terms and the seed for a chunk: `audio` maps mel, pitch, energy, mfcc to
        [N, K, F] windows of its N frames."""
        if self.audio_terms:
            terms = [module(audio[key]) for key, module in self.audio_terms]
            gammas = sum(gamma for gamma, _ in terms).split(self.sizes, 1)
            betas = sum(beta for _, beta in terms).split(self.sizes, 1)
            for block, gamma, beta in zip(self.blocks, gammas, betas):
                block.audio = (gamma[:, :, None, None], beta[:, :, None, None])
        mfcc = audio["mfcc"].to(self.source.dtype)
        self.seed.outputs = self.seed.module(mfcc, self.source.expand(len(mfcc), -1, -1, -1))

    def step(self, index: int, conditioning: dict[str, torch.Tensor]) -> GeneratorOutput:
        """The generator's output for frame `index` of the current chunk; `conditioning` is the per-frame
        batch of one the generator takes (its audio entries are only shape-checked, not used)."""
        self.seed.index = index
        eyes_open = not bool(conditioning["eyes"].any()) if "eyes" in conditioning else False
        for block in self.blocks:
            block.index, block.eyes_open = index, eyes_open
        return self.network(conditioning)
