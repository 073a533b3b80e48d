"""The trained model as one object and one file: generator, motion predictor, their configuration and the
feature parameters generation must reproduce (fps, crop, audio analysis).

A file keeps the MAN sources it was trained with (its configuration's `man.enabled`), so a model made before
the `eyes` source existed loads as the paper's five-source model, which does not blink.

`mouth_strength` scales the mouth region of the composite mask at generation (1: as trained). Training
chooses it on held-out clips of its own speakers (`evaluation.calibration`): a GAN paints the mouth as
boldly as a real one moves, and where speech does not tell the exact shape, a smaller change scores closer
to the real frames. Files made before it load at 1.

`mouth` (models.mouth.MouthOpening) predicts how far the speech opens the mouth, and generation opens the
photo's mouth by it (the composite head's mouth layer), scaled by the mouth strength too. None: the
generator's own mouth alone (files made before it, and `mouth_opening.enabled: false`). `eyelids`: blinks are
drawn by the head's eyelid layer (models.eyelids) on top of the generator's own eyes; files made before it
load without."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from talking_face.atomic import torch_save
from talking_face.conditioning.inputs import motion_predictor
from talking_face.models import MANGenerator, ModelConfig, model_config
from talking_face.models.mouth import MouthOpening

BUNDLE_VERSION = 1


def check_mouth_strength(value: float) -> float:
    """`value` as a float; ValueError unless it is in [0, 1]."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"mouth strength must be between 0 and 1, got {value:g}")
    return value


@dataclass
class TalkingFaceModel:
    generator: MANGenerator
    predictor: nn.Module
    config: ModelConfig
    features: dict  # the `features.extract` parameters the model was trained with
    mouth_strength: float = 1.0  # the composite mask's scale on the mouth region at generation, in [0, 1]
    mouth: MouthOpening | None = None  # the speech's mouth opening, for the composite head's mouth layer
    eyelids: bool = False  # blinks drawn by the composite head's eyelid layer

    def __post_init__(self) -> None:
        self.mouth_strength = check_mouth_strength(self.mouth_strength)

    @classmethod
    def build(cls, config: ModelConfig, features: dict) -> TalkingFaceModel:
        return cls(MANGenerator(config.generator), motion_predictor(config), config, dict(features))

    @property
    def image_size(self) -> int:
        return self.config.generator.image_size

    @property
    def motion_kind(self) -> str:
        return self.config.generator.man.motion

    @property
    def context_frames(self) -> int:
        return self.config.flow.context_frames if self.motion_kind == "flow" else self.config.keypoint.context_frames

    @property
    def uses_visemes(self) -> bool:
        """Whether the generator reads the speech source (pocketsphinx's visemes, computed from the audio)."""
        return "visemes" in self.config.generator.man.enabled

    @property
    def audio_window(self) -> int:
        return self.config.generator.audio_window

    def eval(self) -> TalkingFaceModel:
        """For generation; the predictor's weights channels-last, which makes its batch-of-one convolutions on
        CPU about a quarter faster (the live loop, measured), where the generator's gain nothing."""
        self.generator.eval()
        self.predictor.eval().to(memory_format=torch.channels_last)
        if self.mouth is not None:
            self.mouth.eval()
        return self

    def to(self, device) -> TalkingFaceModel:
        self.generator.to(device)
        self.predictor.to(device)
        if self.mouth is not None:
            self.mouth.to(device)
        return self

    def state(self) -> dict:
        return {
            "version": BUNDLE_VERSION,
            "config": self.config.to_dict(),
            "features": self.features,
            "generator": self.generator.state_dict(),
            "predictor": self.predictor.state_dict(),
            "mouth_strength": self.mouth_strength,
            "mouth": None if self.mouth is None else self.mouth.state(),
            "eyelids": self.eyelids,
        }

    @classmethod
    def from_state(cls, state: dict) -> TalkingFaceModel:
        """The model of a `state()` dict; ValueError when its weights do not fit its own configuration."""
        config = state["config"]
        if "output" not in config["generator"]:  # written before the composite head: the paper's direct head
            config = {**config, "generator": {**config["generator"], "output": "direct"}}
        if "mask_region" not in config["generator"]:  # written before the mask was capped to the moving parts
            config = {**config, "generator": {**config["generator"], "mask_region": "anywhere"}}
        model = cls.build(model_config("cpu", overrides=config), state["features"])
        model.mouth_strength = check_mouth_strength(state.get("mouth_strength", 1.0))
        for name in ("generator", "predictor"):
            try:
                getattr(model, name).load_state_dict(state[name])
            except RuntimeError as error:
                detail = " ".join(str(error).split())
                raise ValueError(f"the {name}'s weights do not fit the model's configuration: {detail[:400]}") from None
        if state.get("mouth"):  # written before the mouth layer: the generator's own mouth
            model.mouth = MouthOpening.from_state(state["mouth"])
        model.eyelids = bool(state.get("eyelids", False))
        return model.eval()

    def save(self, path: str | Path) -> Path:
        """Writes the bundle atomically (temp file in the same folder, then rename)."""
        return torch_save(self.state(), path)

    @classmethod
    def load(cls, path: str | Path) -> TalkingFaceModel:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: model file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # torch raises many types for a damaged file
            raise ValueError(f"{path}: not a talking-face model file ({error.__class__.__name__})") from None
        if not isinstance(state, dict) or state.get("version") != BUNDLE_VERSION:
            raise ValueError(f"{path}: not a talking-face model file (version {BUNDLE_VERSION} expected)")
        try:
            return cls.from_state(state)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
