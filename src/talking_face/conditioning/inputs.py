"""From a batch and a predicted motion to the generator's conditioning: shared by training and generation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from talking_face.models import FlowPredictor, KeypointPredictor, ModelConfig
from talking_face.models.layer import LAYER_KEYS

AUDIO_KEYS = ("mel", "pitch", "energy", "mfcc")  # every model's audio inputs; "visemes" only where the source is on


def motion_predictor_name(config: ModelConfig) -> str:
    """Which pretrained predictor feeds the MAN motion source: "flow" (UNet) or "keypoint" (hourglass)."""
    return "flow" if config.generator.man.motion == "flow" else "keypoint"


def motion_predictor(config: ModelConfig) -> torch.nn.Module:
    """The predictor whose output feeds the MAN motion source (flow UNet or keypoint hourglass)."""
    if motion_predictor_name(config) == "flow":
        return FlowPredictor(config.flow)
    return KeypointPredictor(config.keypoint)


def motion_target(batch: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    return batch["flow"] if kind == "flow" else batch["heatmaps"]


def motion_for_generator(predicted: torch.Tensor, image_size: int) -> torch.Tensor:
    """Heatmaps come at 96x96 and are resized to the generator's size; flow already has it."""
    if predicted.shape[-1] != image_size:
        predicted = F.interpolate(predicted, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return predicted


def generator_conditioning(batch: dict[str, torch.Tensor], motion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every input the generator may read; `batch["eyes"]` is the eye closure map [B,1,S,S] (features.eyes),
    `batch["parts"]` (when given) the source's moving parts [B,1,S,S] (features.parts), and the mouth layer's
    entries (LAYER_KEYS, models.mouth) when generation opens the mouth."""
    frame_keys = ("eyes", *AUDIO_KEYS, *(("visemes",) if "visemes" in batch else ()))
    optional = {key: batch[key] for key in ("parts", *LAYER_KEYS) if key in batch}
    return {"source": batch["source"], "motion": motion, **optional, **{key: batch[key] for key in frame_keys}}


def next_context(context: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """The previous-frames input [B, 3*C, S, S] one frame later: the oldest frame out, `frame` in last."""
    return torch.cat([context[:, frame.shape[1] :], frame], 1)
