"""Arrays to the tensors the networks read: images in [-1, 1] and the audio windows of a frame, the same
for a feature file in training and a user's audio at generation."""

from __future__ import annotations

import numpy as np
import torch

from talking_face.features.schema import N_LEVELS

# Fixed scalings (not per-clip statistics) so that generation on any audio sees the training ranges:
# log-mel is in dB re 1, speech spans about -70..+20 dB; MFCCs span a few hundred units.
MEL_DB_OFFSET, MEL_DB_SCALE = 30.0, 40.0
MFCC_SCALE = 200.0

def to_image_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1] (the generator's tanh range)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
    return tensor.movedim(-1, -3)


def one_hot(levels: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(levels.astype(np.int64)), N_LEVELS).float()


def window(index: int, length: int, size: int) -> np.ndarray:
    """Indices of a `size`-frame window centred on `index`, clamped at the clip's ends."""
    half = size // 2
    return np.clip(np.arange(index - half, index - half + size), 0, length - 1)


def scaled_mel(mel: np.ndarray) -> torch.Tensor:
    """Log-mel frames (dB) as the networks read them."""
    return (torch.from_numpy(np.ascontiguousarray(mel)).float() + MEL_DB_OFFSET) / MEL_DB_SCALE


def scaled_mfcc(mfcc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mfcc)).float() / MFCC_SCALE


def audio_conditioning(clip: dict[str, np.ndarray], t: int, audio_window: int) -> dict[str, torch.Tensor]:
    """The audio inputs of frame t: mel, pitch and energy windows [K, 256], the MFCC window [K, 13] and,
    when the clip has them (a model with the speech source), the visemes window [K, 13]."""
    idx = window(t, len(clip["mel"]), audio_window)
    inputs = {
        "mel": scaled_mel(clip["mel"][idx]),
        "pitch": one_hot(clip["pitch"][idx]),
        "energy": one_hot(clip["energy"][idx]),
        "mfcc": scaled_mfcc(clip["mfcc"][idx]),
    }
    if "visemes" in clip:
        inputs["visemes"] = torch.from_numpy(clip["visemes"][idx]).float()
    return inputs
