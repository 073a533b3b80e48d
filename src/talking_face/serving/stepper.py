"""The generator run one frame at a time, with everything that does not depend on earlier frames computed
ahead: the image branches of the MAN blocks once per source photo (the photo never changes), and the audio
branches and the MFCC seed for a whole chunk of frames in one batched call each (audio does not depend on
what was generated), and the eye branches once for the open-eye (all-zero) map that most frames have. Only
the motion path, which follows the previous generated frames, and the eyes during a blink run per frame.

The per-frame network is a copy of the generator that shares its parameters (nothing is duplicated) with
those submodules swapped for stand-ins returning the precomputed rows, so it runs the model's own forward
code and gives the plain generator's output up to float rounding of the batched calls.
"""

from __future__ import annotations

import copy
from itertools import chain

import torch
from torch import nn

from talking_face.models.config import AUDIO_SOURCES, CONDITION_KEYS
from talking_face.models.generator import GeneratorOutput, MANGenerator
from talking_face.models.man import man_blocks


class Once(nn.Module):
    """Runs `module` on the first call and returns that output ever after (for inputs that never change)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.output = None

    def forward(self, *args):
        if self.output is None:
            self.output = self.module(*args)
        return self.output


class OnceWhenZero(nn.Module):
    """Runs `module` per call, except while `input_is_zero` is set: the output for the all-zero input is then
    computed once and reused (the caller checks the input once per frame instead of once per block)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.input_is_zero = False
        self.zero_output = None

    def forward(self, *args):
        if not self.input_is_zero:
            return self.module(*args)
        if self.zero_output is None:
            self.zero_output = self.module(*args)
        return self.zero_output


class Rows(nn.Module):
    """Returns row `index` (kept as a batch of one) of outputs computed ahead for a chunk of frames."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.outputs: tuple[torch.Tensor, ...] | torch.Tensor | None = None
        self.index = 0

    def forward(self, *args):
        if isinstance(self.outputs, torch.Tensor):
            return self.outputs[self.index : self.index + 1]
        return tuple(output[self.index : self.index + 1] for output in self.outputs)


def shared_copy(module: nn.Module) -> nn.Module:
    """A deep copy of `module` whose parameters and buffers are the original's tensors (not copied)."""
    memo = {id(tensor): tensor for tensor in chain(module.parameters(), module.buffers())}
    return copy.deepcopy(module, memo)


class FrameStepper:
    """`generator` for one source image: `set_audio(chunk)` for each chunk of frames, then `step(i, ...)`."""

    def __init__(self, generator: MANGenerator, source: torch.Tensor):
        self.source = source
        self.network = shared_copy(generator)
        self.seed = Rows(self.network.seed)
        self.network.seed = self.seed
        self.audio_rows: list[tuple[str, Rows]] = []
        self.eye_branches: list[OnceWhenZero] = []
        for _, block in man_blocks(self.network):
            for name in block.sources:
                if name in AUDIO_SOURCES:
                    rows = Rows(block.branches[name])
                    block.branches[name] = rows
                    self.audio_rows.append((CONDITION_KEYS[name], rows))
                elif name == "image":
                    block.branches[name] = Once(block.branches[name])
                elif name == "eyes":
                    block.branches[name] = OnceWhenZero(block.branches[name])
                    self.eye_branches.append(block.branches[name])

    def set_audio(self, audio: dict[str, torch.Tensor]) -> None:
        """Computes the audio branches and the seed for a chunk: `audio` maps mel, pitch, energy, mfcc to
        [N, K, F] windows of its N frames."""
        for key, rows in self.audio_rows:
            rows.outputs = rows.module(audio[key])
        mfcc = audio["mfcc"].to(self.source.dtype)
        self.seed.outputs = self.seed.module(mfcc, self.source.expand(len(mfcc), -1, -1, -1))

    def step(self, index: int, conditioning: dict[str, torch.Tensor]) -> GeneratorOutput:
        """The generator's output for frame `index` of the current chunk; `conditioning` is the per-frame
        batch of one the generator takes (its audio entries are only shape-checked, not used)."""
        self.seed.index = index
        for _, rows in self.audio_rows:
            rows.index = index
        eyes_open = bool(self.eye_branches) and not bool(conditioning["eyes"].any())
        for branch in self.eye_branches:
            branch.input_is_zero = eyes_open
        return self.network(conditioning)
