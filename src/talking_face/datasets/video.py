"""A Kedro dataset for one video clip with its audio: an H.264 + AAC mp4 written and read with PyAV."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import numpy as np
from kedro.io import AbstractDataset
from kedro.io.core import get_protocol_and_path

from talking_face.media.audio import read_audio
from talking_face.media.errors import MediaError
from talking_face.media.video import read_frames, write_video


class VideoClip(NamedTuple):
    """Frames (uint8 [T, H, W, 3] RGB) with mono float32 audio; a plain 4-tuple in this order also saves."""

    frames: np.ndarray
    audio: np.ndarray
    fps: float
    sample_rate: int


class VideoDataset(AbstractDataset[tuple, VideoClip]):
    """Saves a (frames, audio, fps, sample_rate) clip as an mp4 (atomically) and loads it back.

    Example catalog entry, one mp4 per partition:

    .. code-block:: yaml

        sample_clips:
          type: partitions.PartitionedDataset
          path: data/01_raw/sample
          dataset: talking_face.datasets.VideoDataset
          filename_suffix: .mp4
    """

    def __init__(
        self, filepath: str, sample_rate: int = 16000, fps: float | None = None, metadata: dict[str, Any] | None = None
    ):
        """`sample_rate` and `fps` are what `load` resamples to (`fps=None` keeps the file's own rate)."""
        protocol, path = get_protocol_and_path(filepath)
        if protocol != "file":
            raise ValueError(f"{filepath}: VideoDataset writes local files only (PyAV needs a path), not '{protocol}://'")
        self._filepath = PurePosixPath(path)
        self._sample_rate = int(sample_rate)
        self._fps = fps
        self.metadata = metadata

    def load(self) -> VideoClip:
        frames, fps = read_frames(self._filepath, fps=self._fps)
        return VideoClip(frames, read_audio(self._filepath, self._sample_rate), fps, self._sample_rate)

    def save(self, data: tuple) -> None:
        if len(data) != 4:
            raise MediaError(self._filepath, f"expected (frames, audio, fps, sample_rate), got {len(data)} items")
        frames, audio, fps, sample_rate = data
        frames, audio = np.asarray(frames), np.asarray(audio)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            problem = f"frames must be uint8 [T, H, W, 3] with T > 0, got {frames.dtype} {frames.shape}"
            raise MediaError(self._filepath, problem)
        if audio.ndim != 1 or audio.size == 0:
            raise MediaError(self._filepath, f"audio must be mono samples [N] with N > 0, got shape {audio.shape}")
        if fps <= 0 or sample_rate <= 0:
            raise MediaError(self._filepath, f"fps and sample_rate must be positive, got {fps} and {sample_rate}")
        write_video(self._filepath, frames, fps=int(round(fps)), audio=audio, audio_rate=int(sample_rate))

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "sample_rate": self._sample_rate, "fps": self._fps}
