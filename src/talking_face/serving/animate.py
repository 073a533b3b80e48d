"""Image + audio -> frames, autoregressively: each frame is generated from the source image, the previous
`context` generated frames (the source repeated at the start, as in training) and the audio around it.

This is the one generation path: evaluation, the `talking-face` CLI, the batch `generate` pipeline and the
MLflow pyfunc model all call `animate`, so what is measured is what users get. Frames stream out one at a
time and the audio is analysed a chunk (30 s) at a time, so memory stays flat however long the audio is.

Blinks: the MAN `eyes` source gets a blink schedule drawn at `blink_rate` per second (`serving.blinks`,
seeded, so the same call gives the same video); `blink_rate=0` turns blinks off.

Speed: what does not depend on earlier frames is computed ahead (`serving.stepper`): the image branches once,
the audio branches and the MFCC seed in one batched call per chunk; only the motion path runs per frame.
"""

from __future__ import annotations

import math
from typing import Iterator, NamedTuple

import numpy as np
import torch

from talking_face.features.audio import AUDIO_DEFAULTS, audio_features, video_hop
from talking_face.features.eyes import DEFAULT_BLINK_RATE
from talking_face.features.phonemes import speech_visemes
from talking_face.models.generator import GeneratorOutput
from talking_face.serving.blinks import EyeControls, crop_landmarks
from talking_face.serving.parts import PhotoLayers, source_parts
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.stepper import FrameStepper
from talking_face.conditioning.inputs import generator_conditioning, motion_for_generator, next_context
from talking_face.conditioning.tensors import audio_conditioning, to_image_tensor

CHUNK_FRAMES = 750  # frames whose audio is analysed and batched together (30 s at 25 fps)
MARGIN_FRAMES = 50  # extra audio analysed either side of a chunk, so its features match the whole clip's
BATCH_FRAMES = 50  # frames whose audio branches run as one batch (bounds their outputs' memory)


class GeneratedFrame(NamedTuple):
    image: np.ndarray  # uint8 [S, S, 3] RGB, the frame
    attention: np.ndarray  # float32 [S, S] CAM attention map of the generator
    mask: np.ndarray  # float32 [S, S] in [0, 1]: where painted pixels replace the warped source (1: direct head)
    motion: np.ndarray  # float32 [S, S, 2] backward flow in pixels (x, y) warping the source (0: direct head)
    painted: np.ndarray  # uint8 [S, S, 3] RGB, the generator's own pixels


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, S, S] in [-1, 1] -> uint8 [B, S, S, 3]."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def generated_frame(output: GeneratorOutput) -> GeneratedFrame:
    """The first row of a generator output as numpy (what paste-back and evaluation need)."""
    return GeneratedFrame(
        to_uint8(output.image[:1])[0],
        output.attention[0, 0].float().cpu().numpy(),
        output.mask[0, 0].float().cpu().numpy(),
        output.motion[0].permute(1, 2, 0).contiguous().float().cpu().numpy(),
        to_uint8(output.painted[:1])[0],
    )


def frame_count(n_samples: int, sample_rate: int, fps: float) -> int:
    return max(1, math.ceil(n_samples / video_hop(sample_rate, fps)))


def audio_chunks(
    audio: np.ndarray,
    n_frames: int,
    fps: float,
    params: dict,
    chunk_frames: int = CHUNK_FRAMES,
    margin: int = MARGIN_FRAMES,
    visemes: bool = False,
) -> Iterator[tuple[dict[str, np.ndarray], int, int]]:
    """(features, offset, count) for each chunk of frames: the chunk is `count` frames of `features` from
    `offset` on.

    A chunk's features come from its audio plus `margin` frames either side (cut at the clip's ends), so
    every window the chunk needs sees the same samples as in the whole clip; segments start on frames where
    the video and the pitch/energy hops meet, so those grids line up too. Audio up to one chunk long is
    analysed whole, exactly as the features pipeline does. `visemes`: the speech source's track too
    (recognised on the same audio; a clip in training is recognised whole).
    """
    options = {**AUDIO_DEFAULTS, **params}
    hop = video_hop(int(options["sample_rate"]), fps)
    align = math.lcm(hop, int(options["stft_hop"])) // hop
    for first in range(0, n_frames, chunk_frames):
        start = max(0, first - margin) // align * align
        stop = min(n_frames, first + chunk_frames + margin)
        segment = audio[start * hop : stop * hop]
        features = audio_features(segment, stop - start, fps, options)
        if visemes:
            features["visemes"] = speech_visemes(segment, stop - start, int(options["sample_rate"]), fps)
        yield features, first - start, min(chunk_frames, n_frames - first)


def stack_rows(rows: list[dict[str, torch.Tensor]], device) -> dict[str, torch.Tensor]:
    """Per-frame audio inputs (`audio_conditioning`) -> one [N, K, F] tensor per key."""
    return {key: torch.stack([row[key] for row in rows]).to(device) for key in rows[0]}


def audio_batches(
    audio: np.ndarray, n_frames: int, fps: float, params: dict, window: int, device, visemes: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """The generator's audio inputs (AUDIO_KEYS, and "visemes" when asked), BATCH_FRAMES frames at a time,
    each [N, K, F]."""
    chunks = audio_chunks(audio, n_frames, fps, params, CHUNK_FRAMES, MARGIN_FRAMES, visemes)
    for features, offset, count in chunks:
        for begin in range(offset, offset + count, BATCH_FRAMES):
            frames = range(begin, min(begin + BATCH_FRAMES, offset + count))
            yield stack_rows([audio_conditioning(features, t, window) for t in frames], device)


class FaceAnimator:
    """The per-frame loop for one source photo, fed the audio inputs of consecutive frames in batches as they
    become known: `animate` feeds it a whole file's, the live stream (`serving.live`) what has arrived.
    `eyes` gives each frame's eye closure map by its index; `mouth_strength` overrides the model's (None)."""

    def __init__(
        self, model: TalkingFaceModel, source_crop: np.ndarray, eyes: EyeControls, mouth_strength: float | None = None
    ):
        self.model, self.eyes, self.t = model, eyes, 0
        self.device = next(model.generator.parameters()).device
        self.source = to_image_tensor(source_crop)[None].to(self.device)
        self.stepper = FrameStepper(model.generator, self.source)
        self.previous = self.source.repeat(1, model.context_frames, 1, 1)
        has_layers = model.mouth is not None or model.eyelids
        wants_points = has_layers or model.generator.limits_mask
        points = crop_landmarks(source_crop, float(model.features["crop_margin"])) if wants_points else None
        self.parts = source_parts(model, source_crop, mouth_strength, points)
        self.layers = PhotoLayers(model, source_crop, points, mouth_strength) if has_layers else None

    @torch.inference_mode()
    def frames(self, frames_audio: dict[str, torch.Tensor]) -> Iterator[GeneratedFrame]:
        """One GeneratedFrame per row of `frames_audio` (AUDIO_KEYS, each [N, K, F]), the frames after the
        ones already generated."""
        model = self.model
        self.stepper.set_audio(frames_audio)
        count = len(frames_audio["mel"])
        closure = np.zeros(count, np.float32)
        scheduled = self.eyes.closure[self.t : self.t + count]
        closure[: len(scheduled)] = scheduled
        per_frame = {**frames_audio, **(self.layers(frames_audio, closure) if self.layers is not None else {})}
        for i in range(count):
            batch = {"source": self.source, **{key: value[i : i + 1] for key, value in per_frame.items()}}
            batch["eyes"] = self.eyes.map(self.t)
            if self.parts is not None:
                batch["parts"] = self.parts
            self.t += 1
            motion = model.predictor(self.previous, batch["mel"])
            output = self.stepper.step(i, generator_conditioning(batch, motion_for_generator(motion, model.image_size)))
            self.previous = next_context(self.previous, output.image)
            yield generated_frame(output)


def animate(
    model: TalkingFaceModel,
    source_crop: np.ndarray,
    audio: np.ndarray,
    blink_rate: float = DEFAULT_BLINK_RATE,
    blink_seed: int = 0,
    mouth_strength: float | None = None,
) -> Iterator[GeneratedFrame]:
    """Yields one GeneratedFrame per video frame of `audio` (mono, at the model's audio sample rate).

    `source_crop` is the face crop (uint8 [S, S, 3], S = model.image_size) cropped as in training;
    `blink_rate` blinks per second (0: none) are drawn from `blink_seed`; `mouth_strength` in [0, 1] scales
    the mouth's change from the photo (None: the model's calibrated strength, `TalkingFaceModel`).
    """
    fps = float(model.features["fps"])
    audio_params = model.features["audio"]
    n_frames = frame_count(len(audio), int(audio_params["sample_rate"]), fps)
    eyes = EyeControls.for_model(model, source_crop, n_frames, blink_rate, blink_seed)
    animator = FaceAnimator(model, source_crop, eyes, mouth_strength)
    batches = audio_batches(audio, n_frames, fps, audio_params, model.audio_window, animator.device, model.uses_visemes)
    for frames_audio in batches:
        yield from animator.frames(frames_audio)
