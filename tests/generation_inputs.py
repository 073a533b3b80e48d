"""Inputs for the generation tests, made on the fly: a portrait photo, speech in several audio formats,
and an untrained model bundle (generation only needs the right shapes, not a trained model)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import librosa
import numpy as np
import torch

from talking_face.features.extract import resolve_params
from talking_face.models import model_config
from talking_face.sample.face import FaceLook, portrait
from talking_face.sample.speech import synthesize
from talking_face.conditioning.bundle import TalkingFaceModel

# Suffix -> (codec, sample rate): wav at 44.1 kHz, opus in ogg only takes 48 kHz.
AUDIO_FORMATS = {
    ".wav": ("pcm_s16le", 44100),
    ".mp3": ("libmp3lame", 44100),
    ".m4a": ("aac", 22050),
    ".flac": ("flac", 16000),
    ".ogg": ("libopus", 48000),
}


def speech(seconds: float, seed: int = 3) -> np.ndarray:
    """Synthesized speech, mono float32 at 16 kHz."""
    return synthesize(seconds, seed).samples


def write_audio(path: Path, samples: np.ndarray, sample_rate: int = 16000, stereo: bool = False) -> Path:
    """`samples` (mono, float, at `sample_rate`) encoded with the codec of the file's suffix (AUDIO_FORMATS),
    resampled to that format's rate; `stereo` writes two different channels."""
    codec, rate = AUDIO_FORMATS[path.suffix]
    data = librosa.resample(np.asarray(samples, dtype=np.float32), orig_sr=sample_rate, target_sr=rate)
    channels = np.stack([data, 0.5 * data]) if stereo else data[None]
    layout = "stereo" if stereo else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        for start in range(0, channels.shape[1], 1024):
            chunk = np.ascontiguousarray(channels[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_image(path: Path, rgb: np.ndarray) -> Path:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: cv2.imwrite failed")
    return path


def photo(size: int = 320) -> np.ndarray:
    """The sample data's portrait (a real photo, reframed) as an RGB square of `size` pixels."""
    return portrait(FaceLook(frame_size=size))


def untrained_bundle(path: Path, preset: str = "cpu", **overrides) -> Path:
    """A randomly initialised model bundle with the project's feature parameters. The composite head's change
    and motion start at zero (the photo comes back unchanged); they get small random weights too, so that
    frames move."""
    config = model_config(preset, overrides=overrides or None)
    features = resolve_params({"crop_size": config.generator.image_size})
    model = TalkingFaceModel.build(config, features)
    head = getattr(model.generator, "composite_head", None)
    if head is not None:
        with torch.no_grad():
            for conv in (head.to_change, head.to_motion):
                torch.nn.init.normal_(conv.weight, std=0.05, generator=torch.Generator().manual_seed(0))
    return model.save(path)
