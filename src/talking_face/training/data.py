"""Torch dataset over the per-clip feature files (see `features/schema.py`).

One item is a sequence of `rollout` consecutive frames t0..t0+L-1 of one clip: the source image, the
`context` real frames before t0 (the source repeated before the clip starts), and per frame (leading
dimension L) the target, windows of mel, pitch, energy and MFCC centred on it, the motion targets
(heatmaps at t, flow from t-1 to t), the eye closure map (`features.eyes`: the frame's closure from its
eye landmarks, placed on the source frame's eyes) and the frame's lip and jaw points with their displacement
back to the source's (`features.parts.mouth_motion`, grid_sample units); and the source's moving parts
(`features.parts`) that weigh the composite mask's sparsity. With `colour_jitter`, a sequence's images share
one random colour shift; with `geometry_jitter`, all its maps and points one random zoom, shift and mirror.
GAN training generates the later frames of a sequence from the model's own earlier outputs, as generation
does. Clips are read lazily and a few are cached per worker, so no large object is ever shipped to
workers.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from talking_face.features.eyes import eye_aspect_ratio, eye_blobs, eye_closure, eye_closure_maps
from talking_face.features.parts import inner_mouth, mouth_motion, moving_parts
from talking_face.features.phonemes import speech_visemes
from talking_face.conditioning.sync_inputs import expert_mel, mel_windows
from talking_face.conditioning.tensors import audio_conditioning, to_image_tensor
from talking_face.models.sync_expert import SyncExpertConfig

# The keys of an item with a frame dimension ("visemes" too when the dataset computes them).
FRAME_KEYS = ("target", "heatmaps", "flow", "eyes", "mouth_points", "mouth_shifts", "mouth_inside", "mel", "pitch",
              "energy", "mfcc")  # fmt: skip


def clip_length(path: str | Path) -> int:
    """Frames in a feature file (reads one small array, not the frames)."""
    with np.load(path) as archive:
        return int(archive["pitch"].shape[0])


def load_clip(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def with_source_maps(clip: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The clip with its eye closure per frame [T], the source frame's eye blobs [S, S], the map of its
    moving parts [S, S] and the lip and jaw points and displacements [T, P, 2] (`features.parts`) added, the
    points in grid_sample's align_corners=False units (-1 and 1 the crop's outer edges)."""
    landmarks, size = clip["landmarks"], clip["frames"].shape[1]
    closure = eye_closure(eye_aspect_ratio(landmarks))
    points, shifts = mouth_motion(landmarks)
    return {**clip, "eye_closure": closure, "eye_blobs": eye_blobs(landmarks[0], size),
            "parts": moving_parts(landmarks[0], size), "mouth_points": (2 * points + 1) / size - 1,
            "mouth_shifts": 2 * shifts / size, "mouth_inside": inner_mouth(landmarks, size)}  # fmt: skip


def with_speech(clip: dict[str, np.ndarray], visemes: bool, expert: SyncExpertConfig | None) -> dict[str, np.ndarray]:
    """The clip with, from its audio, the speech source's visemes [T, 13] and the lip-sync expert's mel
    [T * k, n_mels] (`conditioning.sync_inputs.expert_mel`), where asked."""
    frames, audio, fps = len(clip["pitch"]), clip["audio"], float(clip["fps"])
    rate = int(round(len(audio) * fps / frames))
    extra = {"visemes": speech_visemes(audio, frames, rate, fps)} if visemes else {}
    if expert is not None:
        extra["expert_mel"] = expert_mel(audio, frames, rate, fps, expert)
    return {**clip, **extra}


# The maps of a training item that live on the face crop, and how each is padded where a zoom reaches past it.
SPATIAL_KEYS = {"source": "border", "previous": "border", "target": "border", "heatmaps": "zeros", "flow": "zeros",
                "eyes": "zeros", "parts": "zeros", "mouth_inside": "zeros"}  # fmt: skip


def jitter_geometry(item: dict[str, torch.Tensor], strength: float) -> dict[str, torch.Tensor]:
    """One random zoom (1 +- strength), shift (+- strength of the half-side) and mirror (half the time) for
    every map of a sequence (SPATIAL_KEYS, any leading dimensions), the flow's vectors turned to match: with
    two training speakers, the mouth would otherwise always sit where theirs do in the crop."""
    scale = 1 + strength * (2 * torch.rand(()) - 1)
    shift = strength * (2 * torch.rand(2) - 1)
    mirror = -1.0 if torch.rand(()) < 0.5 else 1.0
    # affine_grid maps output to input coordinates: input = diag(mirror, 1) / scale * output + shift
    theta = torch.tensor([[mirror / scale, 0.0, shift[0]], [0.0, 1 / scale, shift[1]]])
    out = dict(item)
    # Points move the other way: output = A^-1 (input - shift); displacements only by A^-1.
    inverse = torch.tensor([mirror * scale, scale])
    out["mouth_points"] = (item["mouth_points"] - shift) * inverse
    out["mouth_shifts"] = item["mouth_shifts"] * inverse
    for key, padding in SPATIAL_KEYS.items():
        maps = item[key]
        flat = maps.reshape(-1, *maps.shape[-3:])
        grid = F.affine_grid(theta.expand(len(flat), 2, 3), list(flat.shape), align_corners=False)
        out[key] = F.grid_sample(flat, grid, padding_mode=padding, align_corners=False).reshape(maps.shape)
    # previous(p) ~ following(p + flow(p)) holds in the new frame with flow -> A^-1 flow, A = diag(mirror, 1) / scale
    out["flow"] = out["flow"] * inverse.view(2, 1, 1)
    return out


def jitter_colours(images: list[torch.Tensor], strength: float) -> list[torch.Tensor]:
    """The same random per-channel gain and offset (up to +-strength) applied to every image of a sequence,
    [-1, 1] tensors [..., 3, H, W]: with two training speakers, the painted change would otherwise learn their
    lip and skin colours rather than changes relative to the photo it is given."""
    gain = 1 + strength * (2 * torch.rand(3, 1, 1) - 1)
    offset = strength * (2 * torch.rand(3, 1, 1) - 1)
    return [(((image + 1) / 2 * gain + offset).clamp(0, 1) * 2 - 1) for image in images]


def previous_frames(frames: np.ndarray, source: np.ndarray, t: int, context: int) -> np.ndarray:
    """The `context` frames before t, oldest first, with the source image standing in before the clip."""
    before = [frames[i] if i >= 0 else source for i in range(t - context, t)]
    return np.stack(before)


class FeatureFrameDataset(Dataset):
    """Every `rollout`-frame sequence of the given feature files; items are dicts of tensors (see module docstring)."""

    def __init__(
        self,
        paths: list[str | Path],
        context: int = 5,
        audio_window: int = 5,
        rollout: int = 1,
        cache_clips: int = 8,
        colour_jitter: float = 0.0,
        geometry_jitter: float = 0.0,
        visemes: bool = False,
        expert: SyncExpertConfig | dict | None = None,
    ):
        self.paths = [str(p) for p in paths]
        self.context = context
        self.audio_window = audio_window
        self.rollout = rollout
        self.cache_clips = cache_clips
        self.colour_jitter = colour_jitter
        self.geometry_jitter = geometry_jitter
        self.visemes = visemes
        self.expert = SyncExpertConfig(**expert) if isinstance(expert, dict) else expert
        self._cache: OrderedDict[str, dict] = OrderedDict()
        lengths = [self._length(p) for p in self.paths]
        self.index = [(clip, t) for clip, n in enumerate(lengths) for t in range(n - rollout + 1)]

    def _length(self, path: str) -> int:
        return clip_length(path)

    def _load(self, path: str) -> dict[str, np.ndarray]:
        return load_clip(path)

    def _clip(self, path: str) -> dict[str, np.ndarray]:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        clip = with_speech(with_source_maps(self._load(path)), self.visemes, self.expert)
        self._cache[path] = clip
        if len(self._cache) > self.cache_clips:
            self._cache.popitem(last=False)
        return clip

    def __len__(self) -> int:
        return len(self.index)

    def _frame(self, clip: dict[str, np.ndarray], t: int) -> dict[str, torch.Tensor]:
        flow_to_t = clip["flow"][t - 1] if t > 0 else np.zeros_like(clip["flow"][0])
        return {
            "target": to_image_tensor(clip["frames"][t]),
            "heatmaps": torch.from_numpy(clip["heatmaps"][t]).float() / 255.0,
            "flow": torch.from_numpy(flow_to_t.astype(np.float32)),
            "eyes": torch.from_numpy(eye_closure_maps(clip["eye_blobs"], clip["eye_closure"][t : t + 1])[0]),
            "mouth_points": torch.from_numpy(clip["mouth_points"][t]),
            "mouth_shifts": torch.from_numpy(clip["mouth_shifts"][t]),
            "mouth_inside": torch.from_numpy(clip["mouth_inside"][t])[None],
            **audio_conditioning(clip, t, self.audio_window),
        }

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        clip_number, start = self.index[item]
        clip = self._clip(self.paths[clip_number])
        source = clip["frames"][0]
        frames = [self._frame(clip, t) for t in range(start, start + self.rollout)]
        item = {
            "source": to_image_tensor(source),
            "previous": to_image_tensor(previous_frames(clip["frames"], source, start, self.context)),
            "parts": torch.from_numpy(clip["parts"])[None],
            **{key: torch.stack([frame[key] for frame in frames]) for key in frames[0]},
        }
        if self.expert is not None:  # the expert's speech for every window of `frames` frames in the sequence
            starts = np.arange(start, start + self.rollout - self.expert.frames + 1)
            item["expert_mel"] = torch.from_numpy(mel_windows(clip["expert_mel"], starts, self.expert))
        if self.colour_jitter > 0:
            item["source"], item["previous"], item["target"] = jitter_colours(
                [item["source"], item["previous"], item["target"]], self.colour_jitter
            )
        if self.geometry_jitter > 0:
            item = jitter_geometry(item, self.geometry_jitter)
        item["previous"] = item["previous"].flatten(0, 1)
        return item


def frame_inputs(batch: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Frame k of every sequence in a batch: the per-frame keys without their frame dimension, the source and
    its moving parts."""
    return {"source": batch["source"], "parts": batch["parts"], **{key: batch[key][:, k] for key in frame_keys(batch)}}


def frame_keys(batch: dict[str, torch.Tensor]) -> tuple[str, ...]:
    """The keys of a batch with a frame dimension."""
    return FRAME_KEYS + (("visemes",) if "visemes" in batch else ())


def flatten_frames(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch of B sequences of L frames as a batch of B*L frames (sequence-major), each with its source."""
    length = batch["target"].shape[1]
    return {
        "source": batch["source"].repeat_interleave(length, 0),
        "parts": batch["parts"].repeat_interleave(length, 0),
        **{key: batch[key].flatten(0, 1) for key in frame_keys(batch)},
    }


class ClipBlockSampler(Sampler[int]):
    """Shuffled frames, read a few clips at a time: each epoch shuffles the clip order, then shuffles the
    frames of `block_clips` clips together, so the dataset's clip cache is hit instead of re-reading a
    compressed file per frame. Clips are sharded over data-parallel ranks (rank::world_size)."""

    def __init__(self, dataset: FeatureFrameDataset, block_clips: int, seed: int, rank: int = 0, world_size: int = 1):
        self.block_clips = block_clips
        self.seed = seed
        self.epoch = 0
        self.frames_of_clip: dict[int, list[int]] = {}
        for item, (clip, _) in enumerate(dataset.index):
            self.frames_of_clip.setdefault(clip, []).append(item)
        self.clips = sorted(self.frames_of_clip)[rank::world_size]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(self.frames_of_clip[clip]) for clip in self.clips)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.clips)
        for start in range(0, len(order), self.block_clips):
            block = np.concatenate([self.frames_of_clip[clip] for clip in order[start : start + self.block_clips]])
            yield from rng.permutation(block).tolist()
