"""Probes candidate clips with PyAV: stream facts, content hash and the normalisation each one needs."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import av
import pandas as pd
from tqdm.auto import tqdm

from talking_face.ingest.records import MANIFEST_COLUMNS, ClipCandidate, Rejection
from talking_face.media.audio import probe_audio
from talking_face.media.errors import MediaError
from talking_face.media.video import decodes_first_frame, probe

TARGET_FPS = 25.0
TARGET_AUDIO_RATE = 16000
# Whether each stream really decodes; validation rejects rows where one does not.
STREAM_CHECK_COLUMNS = ["video_readable", "audio_readable"]
# `person` and `split` are decided once all clips are probed (ingest.people, ingest.split).
PROBED_COLUMNS = [name for name in MANIFEST_COLUMNS if name not in ("person", "split")] + STREAM_CHECK_COLUMNS


def normalisation_needs(
    fps: float, audio_rate: int, audio_channels: int, width: int, height: int, variable_frame_rate: bool,
    target_fps: float = TARGET_FPS, target_audio_rate: int = TARGET_AUDIO_RATE,
) -> str:
    """The ';'-joined fixes the features step must apply to reach target_fps video and mono target-rate audio."""
    flags = {
        "fps_resample": abs(fps - target_fps) > 0.01,
        "audio_resample": bool(audio_rate) and audio_rate != target_audio_rate,
        "stereo": audio_channels > 1,
        "portrait": height > width,
        "vfr": variable_frame_rate,
    }
    return ";".join(name for name, needed in flags.items() if needed)


def content_hash(*paths: str | Path) -> str:
    """sha256 over the bytes of the files in order, streamed in 1 MiB blocks."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            with open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        except OSError as error:
            raise MediaError(path, f"file cannot be read ({error.strerror})") from None
    return digest.hexdigest()


def probe_clip(candidate: ClipCandidate) -> dict:
    """One manifest row (without split) for a candidate; raises MediaError when the file is unusable."""
    video = probe(candidate.path)
    has_sidecar = candidate.audio_path != candidate.path
    if has_sidecar:
        sidecar = probe_audio(candidate.audio_path)
        audio_rate, audio_channels, audio_duration_s = sidecar.sample_rate, sidecar.channels, sidecar.duration_s
    else:
        audio_rate, audio_channels, audio_duration_s = video.audio_rate, video.audio_channels, video.audio_duration_s
    hashed = (candidate.path, candidate.audio_path) if has_sidecar else (candidate.path,)
    return {
        **asdict(candidate),
        "fps": video.fps,
        "frame_count": video.frame_count,
        "duration_s": video.duration_s,
        "width": video.width,
        "height": video.height,
        "audio_rate": audio_rate,
        "audio_channels": audio_channels,
        "audio_duration_s": audio_duration_s,
        "av_diff_s": audio_duration_s - video.duration_s if audio_rate else 0.0,
        "file_size": Path(candidate.path).stat().st_size,
        "content_hash": content_hash(*hashed),
        "needs": normalisation_needs(
            video.fps, audio_rate, audio_channels, video.width, video.height, video.variable_frame_rate
        ),
        "video_readable": decodes_first_frame(candidate.path, "video"),
        "audio_readable": bool(audio_rate) and decodes_first_frame(candidate.audio_path, "audio"),
    }


def probe_clips(candidates: list[ClipCandidate], progress: bool = True) -> tuple[pd.DataFrame, list[Rejection]]:
    """Probes every candidate; a file that cannot be probed becomes a rejection and never stops the others."""
    rows, rejections = [], []
    for candidate in tqdm(candidates, desc="probing clips", unit="clip", disable=not progress):
        try:
            rows.append(probe_clip(candidate))
        except (MediaError, av.FFmpegError, OSError) as error:
            rejections.append(Rejection(candidate.clip_id, candidate.path, "probe", _one_line(error, candidate)))
    table = pd.DataFrame(rows, columns=PROBED_COLUMNS)
    return table.astype({"frame_count": "int64", "width": "int64", "height": "int64", "audio_rate": "int64",
                         "audio_channels": "int64", "file_size": "int64", "video_readable": bool,
                         "audio_readable": bool}), rejections


def _one_line(error: Exception, candidate: ClipCandidate) -> str:
    """The problem alone when it concerns the clip's own file (the report names it), else 'file: problem'."""
    if isinstance(error, MediaError) and error.path == candidate.path:
        return error.problem
    return " ".join(str(error).split()) or error.__class__.__name__
