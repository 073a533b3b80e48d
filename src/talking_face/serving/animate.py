"""Image + audio -> frames, autoregressively: each frame is generated from the source image, the previous
`context` generated frames (the source repeated at the start, as in training) and the audio around it.

This is the one generation path: evaluation, the `talking-face` CLI, the batch `generate` pipeline and the
MLflow pyfunc model all call `animate`, so what is measured is what users get. Frames stream out one at a
time, so memory stays flat however long the audio is.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Iterator, NamedTuple

import numpy as np
import torch

from talking_face.features.audio import audio_features, video_hop
from talking_face.serving.bundle import TalkingFaceModel
from talking_face.training.conditioning import generator_conditioning, motion_for_generator
from talking_face.training.data import audio_conditioning, to_image_tensor


class GeneratedFrame(NamedTuple):
    image: np.ndarray  # uint8 [S, S, 3] RGB
    attention: np.ndarray  # float32 [S, S] CAM attention map of the generator


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, S, S] in [-1, 1] -> uint8 [B, S, S, 3]."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def frame_count(n_samples: int, sample_rate: int, fps: float) -> int:
    return max(1, math.ceil(n_samples / video_hop(sample_rate, fps)))


@torch.inference_mode()
def animate(model: TalkingFaceModel, source_crop: np.ndarray, audio: np.ndarray) -> Iterator[GeneratedFrame]:
    """Yields one GeneratedFrame per video frame of `audio` (mono, at the model's audio sample rate).

    `source_crop` is the face crop (uint8 [S, S, 3], S = model.image_size) cropped as in training.
    """
    fps = float(model.features["fps"])
    audio_params = model.features["audio"]
    n_frames = frame_count(len(audio), int(audio_params["sample_rate"]), fps)
    clip_audio = audio_features(audio, n_frames, fps, audio_params)
    device = next(model.generator.parameters()).device
    source = to_image_tensor(source_crop)[None].to(device)
    previous = deque([source] * model.context_frames, maxlen=model.context_frames)
    for t in range(n_frames):
        batch = {key: value[None].to(device) for key, value in audio_conditioning(clip_audio, t, model.audio_window).items()}
        batch["source"] = source
        motion = model.predictor(torch.cat(list(previous), 1), batch["mel"])
        output = model.generator(generator_conditioning(batch, motion_for_generator(motion, model.image_size)))
        previous.append(output.image)
        yield GeneratedFrame(to_uint8(output.image)[0], output.attention[0, 0].float().cpu().numpy())
