"""Network configuration: dataclasses, the CPU and paper presets, and the paper's ablation variants.

    cfg = model_config("cpu")                                    # 64x64, small channels (the default)
    cfg = model_config("paper", variant="t3_no_pitch")           # 256x256, full channel counts, pitch off
    cfg = model_config("cpu", overrides={"image_size": 128, "generator": {"base_channels": 32}})
    generator = MANGenerator(cfg.generator)                     # or MANGenerator(a plain dict)

`overrides` is a nested dict shaped like `ModelConfig` (Kedro parameters can be passed straight in); the
top-level shorthands `image_size` and `audio_window` set every network that has that field, so the
generator and the predictors cannot disagree about the window of audio frames they were built for, and
`output` sets the generator's head (`model.output`: "composite" or the paper's "direct").

Sources of the MAN block (paper eq. 1-2) and the conditioning keys the data loader provides for them:
image -> "source" [B,3,S,S], motion -> "motion" [B,2|15,S,S], eyes -> "eyes" [B,1,S,S] (the eye closure
map, features.eyes), mel/pitch/energy -> [B,K,256], visemes -> "visemes" [B,K,13] (what is said, from
pocketsphinx's phonemes: features.phonemes.viseme_track). The paper's five sources (PAPER_SOURCES, the variant
t3_all_flow) have no control of the eyes, so its faces never blink; the default adds `eyes` (DEFAULT_SOURCES).
The variant `visemes` adds the speech source too: on unseen people it measured no better than without it
(docs/talking.md) and costs a phoneme recognition per live arrival, so it is a named variant, not the default.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from talking_face.features.schema import N_HEATMAPS, N_LEVELS, N_MEL, N_MFCC, N_VISEME_FEATURES

VIDEO_SOURCES = ("image", "motion", "eyes")
AUDIO_SOURCES = ("mel", "pitch", "energy", "visemes")
SOURCES = VIDEO_SOURCES + AUDIO_SOURCES
PAPER_SOURCES = ("image", "motion", "mel", "pitch", "energy")
DEFAULT_SOURCES = ("image", "motion", "eyes", "mel", "pitch", "energy")
CONDITION_KEYS = {
    "image": "source", "motion": "motion", "eyes": "eyes", "mel": "mel", "pitch": "pitch", "energy": "energy",
    "visemes": "visemes",
}  # fmt: skip
VIDEO_BRANCHES = ("conv2d", "partial_conv2d", "conv2d_eca")
AUDIO_BRANCHES = ("conv1d", "lstm")
MOTION_CHANNELS = {"flow": 2, "heatmaps": N_HEATMAPS}
OUTPUTS = ("composite", "direct")
MASK_REGIONS = ("parts", "anywhere")
AUDIO_FEATURES = {"mel": N_MEL, "pitch": N_LEVELS, "energy": N_LEVELS, "visemes": N_VISEME_FEATURES}


def _default_branches() -> dict[str, str]:
    return {**dict.fromkeys(VIDEO_SOURCES, "conv2d"), **dict.fromkeys(AUDIO_SOURCES, "conv1d")}


@dataclass
class MANConfig:
    """Feature network ("branch") per source, which sources are on, and the branch width."""

    branches: dict[str, str] = field(default_factory=_default_branches)
    enabled: tuple[str, ...] = DEFAULT_SOURCES
    motion: str = "flow"  # "flow" (2 channels) or "heatmaps" (15 keypoint heatmaps)
    hidden_channels: int = 16

    def __post_init__(self) -> None:
        self.enabled = tuple(self.enabled)
        self.branches = {**_default_branches(), **self.branches}
        unknown = set(self.enabled) - set(SOURCES)
        if unknown or not self.enabled:
            raise ValueError(f"man.enabled must be a non-empty subset of {SOURCES}, got {self.enabled}")
        for source, branch in self.branches.items():
            allowed = VIDEO_BRANCHES if source in VIDEO_SOURCES else AUDIO_BRANCHES
            if source not in SOURCES or branch not in allowed:
                raise ValueError(f"man.branches: {source!r} takes one of {allowed}, got {branch!r}")
        if self.motion not in MOTION_CHANNELS:
            raise ValueError(f"man.motion must be one of {tuple(MOTION_CHANNELS)}, got {self.motion!r}")

    @property
    def motion_channels(self) -> int:
        return MOTION_CHANNELS[self.motion]

    def video_channels(self, source: str) -> int:
        """Input channels of a video source: RGB, the motion maps, or the one-plane eye closure map."""
        return {"image": 3, "motion": self.motion_channels, "eyes": 1}[source]


@dataclass
class GeneratorConfig:
    image_size: int = 64
    seed_size: int = 4  # side of the MFCC seed tensor; log2(image_size / seed_size) x2 upsamplings follow
    base_channels: int = 16
    channel_multipliers: tuple[int, ...] = (8, 8, 8, 4, 4, 2, 2, 1)  # one per MAN ResNet block
    n_mfcc: int = N_MFCC
    audio_window: int = 5  # K frames of MFCC entering the first layers
    man: MANConfig = field(default_factory=MANConfig)
    # composite: mask * painted + (1 - mask) * the source warped by a predicted motion field; direct: the
    # paper's head, every pixel painted.
    output: str = "composite"
    motion_limit: float = 0.05  # largest shift of the composite head's motion field, as a fraction of the side
    # composite: where the mask may open. parts: only on the source's moving parts (conditioning "parts", the
    # eyes and the mouth with the chin, features.parts); anywhere: the whole crop (models made before this).
    mask_region: str = "parts"

    def __post_init__(self) -> None:
        self.channel_multipliers = tuple(self.channel_multipliers)
        if isinstance(self.man, dict):
            self.man = MANConfig(**self.man)
        if self.output not in OUTPUTS:
            raise ValueError(f"generator.output must be one of {OUTPUTS}, got {self.output!r}")
        if self.mask_region not in MASK_REGIONS:
            raise ValueError(f"generator.mask_region must be one of {MASK_REGIONS}, got {self.mask_region!r}")
        ratio = self.image_size // self.seed_size
        n_up = ratio.bit_length() - 1
        if self.image_size % self.seed_size or ratio != 2**n_up or n_up > len(self.channel_multipliers) - 1:
            raise ValueError(
                f"generator: image_size {self.image_size} must be seed_size {self.seed_size} times a power of 2 "
                f"with at most {len(self.channel_multipliers) - 1} doublings (one per MAN ResNet block but the first)"
            )


@dataclass
class DiscriminatorConfig:
    n_scales: int = 2
    n_layers: int = 3
    base_channels: int = 32
    max_channels: int = 256
    spectral_norm: bool = True


@dataclass
class PredictorConfig:
    base_channels: int = 16
    depth: int = 3  # scales of the hourglass / UNet
    context_frames: int = 5  # previous RGB frames stacked on channels
    audio_window: int = 5
    mel_channels: int = 4  # mel window projected to this many constant planes


@dataclass
class ModelConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    keypoint: PredictorConfig = field(default_factory=PredictorConfig)
    flow: PredictorConfig = field(default_factory=PredictorConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "paper": {
        "image_size": 256,
        "generator": {
            "seed_size": 8,
            "base_channels": 64,
            "channel_multipliers": (16, 16, 16, 8, 4, 2, 1, 1),  # SPADE's progression
            "man": {"hidden_channels": 128},
        },
        "discriminator": {"n_scales": 3, "n_layers": 4, "base_channels": 64, "max_channels": 512},
        "keypoint": {"base_channels": 64, "depth": 4, "mel_channels": 16},
        "flow": {"base_channels": 64, "depth": 4, "mel_channels": 16},  # the classic UNet: 64 .. 1024 channels
    },
}


def _branches(video: str, audio: str) -> dict[str, Any]:
    branches = {**dict.fromkeys(VIDEO_SOURCES, video), **dict.fromkeys(AUDIO_SOURCES, audio)}
    return {"generator": {"man": {"branches": branches}}}


def _sources(*enabled: str, **man: Any) -> dict[str, Any]:
    return {"generator": {"man": {"enabled": enabled, **man}}}


# Table 2 (feature network per source) and Table 3 (which sources feed the MAN blocks). The row names are
# ours: each variant only overrides the MAN settings, so it combines with either preset. The Table 3 rows
# are the paper's sources (no eyes source): t3_all_flow is the paper's design exactly.
VARIANTS: dict[str, dict[str, Any]] = {
    "t2_conv2d_conv1d": _branches("conv2d", "conv1d"),
    "t2_conv2d_lstm": _branches("conv2d", "lstm"),
    "t2_partial_conv1d": _branches("partial_conv2d", "conv1d"),
    "t2_partial_lstm": _branches("partial_conv2d", "lstm"),
    "t2_eca_conv1d": _branches("conv2d_eca", "conv1d"),
    "t2_eca_lstm": _branches("conv2d_eca", "lstm"),
    "t3_all_flow": _sources(*PAPER_SOURCES),
    "t3_all_heatmaps": _sources(*PAPER_SOURCES, motion="heatmaps"),
    "t3_no_motion": _sources("image", "mel", "pitch", "energy"),
    "t3_no_mel": _sources("image", "motion", "pitch", "energy"),
    "t3_no_pitch": _sources("image", "motion", "mel", "energy"),
    "t3_no_energy": _sources("image", "motion", "mel", "pitch"),
    "t3_no_pitch_energy": _sources("image", "motion", "mel"),
    "t3_image_mel": _sources("image", "mel"),
    "visemes": _sources(*SOURCES),  # ours with the speech source (pocketsphinx's visemes)
}


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _build(cls: type, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        default = known[name].default_factory() if callable(known[name].default_factory) else None
        kwargs[name] = _build(type(default), value) if is_dataclass(default) and isinstance(value, dict) else value
    return cls(**kwargs)


def model_config(preset: str = "cpu", variant: str | None = None, overrides: dict[str, Any] | None = None) -> ModelConfig:
    """The preset, then the named ablation variant, then `overrides` (all nested dicts, later wins)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known: {sorted(PRESETS)}")
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; known: {sorted(VARIANTS)}")
    values = _merge(PRESETS[preset], VARIANTS.get(variant, {}))
    values = _merge(values, overrides or {})
    image_size = values.pop("image_size", None)
    audio_window = values.pop("audio_window", None)
    output = values.pop("output", None)
    for name, value in (("image_size", image_size), ("output", output)):
        if value is not None:
            values.setdefault("generator", {})[name] = value
    if audio_window is not None:
        for net in ("generator", "keypoint", "flow"):
            values.setdefault(net, {})["audio_window"] = audio_window
    return _build(ModelConfig, values)


def as_config(cls: type, config: Any) -> Any:
    """Accept a dataclass instance, a plain dict (e.g. Kedro parameters) or None (defaults)."""
    if config is None:
        return cls()
    if isinstance(config, cls):
        return config
    if isinstance(config, dict):
        return _build(cls, config)
    raise TypeError(f"{cls.__name__} expected, got {type(config).__name__}")
