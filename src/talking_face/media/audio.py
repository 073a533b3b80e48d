"""Audio decoding with PyAV: any container or codec FFmpeg reads, mixed to mono and resampled."""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

from talking_face.media.errors import MediaError
from talking_face.media.video import _open, _stream_duration


@dataclass(frozen=True)
class AudioProbe:
    """What the container says about a file's first audio stream (no decode)."""

    sample_rate: int
    channels: int
    duration_s: float


def probe_audio(path: str | os.PathLike) -> AudioProbe:
    """Reads the first audio stream's metadata; raises MediaError when the file has none."""
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(path, "no audio stream")
        stream = container.streams.audio[0]
        return AudioProbe(
            sample_rate=int(stream.codec_context.sample_rate or 0),
            channels=len(stream.codec_context.layout.channels),
            duration_s=_stream_duration(stream, container),
        )


def read_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Decodes the first audio stream to mono float32 in [-1, 1] at `sample_rate` Hz."""
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(path, "no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                for resampled in resampler.resample(frame):
                    chunks.append(resampled.to_ndarray().reshape(-1))
            for resampled in resampler.resample(None):
                chunks.append(resampled.to_ndarray().reshape(-1))
        except av.FFmpegError as error:
            if not chunks:
                raise MediaError(path, f"audio stream cannot be decoded ({error.__class__.__name__})") from None
    if not chunks:
        raise MediaError(path, "audio stream holds no samples")
    return np.concatenate(chunks).astype(np.float32)
