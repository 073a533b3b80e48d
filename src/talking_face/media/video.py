"""Video decoding and H.264 + AAC encoding with PyAV.

Frames are RGB uint8 arrays of shape (H, W, 3). Writers always write to a temporary file in the target
folder and rename it at the end, so a crash never leaves a half-written video behind.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from talking_face.atomic import publish
from talking_face.media.errors import MediaError


@dataclass(frozen=True)
class VideoProbe:
    """What the container says about a file's streams (no full decode)."""

    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    variable_frame_rate: bool
    audio_rate: int
    audio_channels: int
    audio_duration_s: float


def _open(path: str | os.PathLike):
    path = Path(path)
    if not path.exists():
        raise MediaError(path, "file does not exist")
    if not os.access(path, os.R_OK):
        raise MediaError(path, "file is not readable (permission denied)")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        return av.open(str(path))
    except av.FFmpegError as error:
        if isinstance(error, EOFError) or _has_container_signature(path):
            problem = "damaged or truncated media file: its container header is there but cannot be read"
        else:
            problem = "not a readable media file"
        raise MediaError(path, f"{problem} ({error.__class__.__name__})") from None


def _has_container_signature(path: Path) -> bool:
    """True when the first bytes are those of a media container (mp4/mov, mkv/webm, avi/wav, flv, mpeg, ogg)."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
        or head.startswith((b"\x1a\x45\xdf\xa3", b"RIFF", b"FLV", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3", b"OggS"))
    )


def probe(path: str | os.PathLike) -> VideoProbe:
    """Reads stream metadata and demuxes (never decodes) the video packets; raises MediaError when the file
    has no readable video stream or holds fewer frames than its index promises (truncated)."""
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(path, "no video stream (audio-only file?)")
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate or video.base_rate
        fps = float(rate) if rate else 0.0
        width, height, indexed_frames = video.codec_context.width, video.codec_context.height, video.frames
        audio_rate = audio_channels = 0
        audio_duration_s = 0.0
        if container.streams.audio:
            audio = container.streams.audio[0]
            audio_rate = audio.codec_context.sample_rate or 0
            audio_channels = audio.codec_context.channels if hasattr(audio.codec_context, "channels") else len(audio.layout.channels)
            audio_duration_s = _stream_duration(audio, container)
        header_duration_s = _stream_duration(video, container)
        packet_count, times = _demux_video(path, container, video)
    if indexed_frames and packet_count < indexed_frames:
        raise MediaError(path, f"truncated: {packet_count} of {indexed_frames} video frames present")
    deltas = np.diff(times)
    step = float(np.median(deltas)) if len(deltas) else (1.0 / fps if fps else 0.0)
    # Constant-rate timestamps step evenly (up to rounding to the time base); variable ones do not.
    vfr = bool(len(deltas) >= 2 and np.ptp(deltas) > max(0.2 * step, 2 * float(video.time_base or 0)))
    duration_s = float(times[-1] - times[0] + step) if len(times) else header_duration_s
    return VideoProbe(
        fps=fps,
        frame_count=int(indexed_frames or packet_count),
        duration_s=duration_s,
        width=width,
        height=height,
        variable_frame_rate=vfr,
        audio_rate=int(audio_rate),
        audio_channels=int(audio_channels),
        audio_duration_s=audio_duration_s,
    )


def decodes_first_frame(path: str | os.PathLike, kind: str = "video") -> bool:
    """True when the file's first `kind` ("video" or "audio") stream yields a decoded frame."""
    with _open(path) as container:
        streams = getattr(container.streams, kind)
        if not streams:
            return False
        try:
            for _ in container.decode(streams[0]):
                return True
        except av.FFmpegError:
            return False
    return False


def _demux_video(path, container, stream) -> tuple[int, np.ndarray]:
    """Counts the video packets and returns their presentation times (s, sorted), demuxing only."""
    count, ticks = 0, []
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
                tick = packet.pts if packet.pts is not None else packet.dts
                if tick is not None:
                    ticks.append(tick)
    except av.FFmpegError as error:
        raise MediaError(path, f"video stream is truncated or corrupt ({error.__class__.__name__})") from None
    return count, np.sort(np.asarray(ticks, dtype=np.float64)) * float(stream.time_base or 0)


def _stream_duration(stream, container) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def read_frames(path: str | os.PathLike, fps: float | None = None) -> tuple[np.ndarray, float]:
    """Decodes every frame as RGB; with `fps` set, places the frames on that rate's time grid.

    The grid starts at the container's start, so video that starts after its audio stays aligned with it;
    each grid time takes the frame nearest to it, which also fills the gap left by frames that do not
    decode (a damaged packet) instead of shifting every later frame. Returns (frames[T, H, W, 3] uint8, the
    frame rate of the returned frames).
    """
    frames, times = [], []
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.time) if frame.time is not None else len(times) / 25.0)
        except av.FFmpegError as error:
            if not frames:
                raise MediaError(path, f"video stream cannot be decoded ({error.__class__.__name__})") from None
        native = stream.average_rate or stream.guessed_rate
        native_fps = float(native) if native else 25.0
        start = container.start_time / av.time_base if container.start_time is not None else None
    if not frames:
        raise MediaError(path, "video stream holds no frames")
    video = np.stack(frames)
    if fps is None:
        return video, native_fps
    times = np.asarray(times) - min(times[0], start if start is not None else times[0])
    n_out = max(1, int(round((times[-1] + 1.0 / native_fps) * fps)))
    if abs(fps - native_fps) < 1e-3 and n_out == len(video):
        return video, float(fps)
    return video[nearest_indices(times, np.arange(n_out) / fps)], float(fps)


def nearest_indices(times: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each wanted time, the index of the nearest of the sorted `times`."""
    after = np.searchsorted(times, wanted).clip(0, len(times) - 1)
    before = (after - 1).clip(0)
    return np.where(np.abs(times[before] - wanted) <= np.abs(times[after] - wanted), before, after)


class VideoWriter:
    """Streams RGB frames into an H.264 mp4, optionally with a mono audio track; atomic on close."""

    def __init__(self, path: str | os.PathLike, fps: int = 25, audio_rate: int | None = None, crf: int = 20):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, self._tmp = tempfile.mkstemp(suffix=".mp4", prefix=".part-", dir=self.path.parent)
        os.close(handle)
        self._container = av.open(self._tmp, mode="w", format="mp4")
        self._video = self._container.add_stream("libx264", rate=fps)
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(crf), "preset": "veryfast"}
        self._audio = None
        self._audio_samples = 0
        if audio_rate:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = "mono"
        self._size = None

    def write(self, frame: np.ndarray) -> None:
        if self._size is None:
            # H.264 with yuv420p needs even sizes.
            self._size = (frame.shape[1] // 2 * 2, frame.shape[0] // 2 * 2)
            self._video.width, self._video.height = self._size
        frame = np.ascontiguousarray(frame[: self._size[1], : self._size[0], :3])
        for packet in self._video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)

    def write_audio(self, samples: np.ndarray) -> None:
        """Encodes mono float samples in [-1, 1] at the writer's audio rate."""
        if self._audio is None:
            raise ValueError("this writer was opened without an audio track")
        samples = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
        for start in range(0, len(samples), 1024):
            chunk = samples[start : start + 1024][None, :]
            audio_frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            audio_frame.sample_rate = self._audio.rate
            # Timestamps let the muxer write the AAC priming delay as an edit list; without them every
            # decoder hears the audio 1024 samples late.
            audio_frame.pts, audio_frame.time_base = self._audio_samples, Fraction(1, self._audio.rate)
            self._audio_samples += chunk.shape[1]
            for packet in self._audio.encode(audio_frame):
                self._container.mux(packet)

    def close(self) -> Path:
        for stream in (self._video, self._audio):
            if stream is not None:
                for packet in stream.encode(None):
                    self._container.mux(packet)
        self._container.close()
        publish(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._container.close()
        finally:
            Path(self._tmp).unlink(missing_ok=True)


@contextmanager
def video_writer(path, fps: int = 25, audio_rate: int | None = None, crf: int = 20) -> Iterator[VideoWriter]:
    """Context manager around VideoWriter: renames into place on success, deletes the temp file on error."""
    writer = VideoWriter(path, fps=fps, audio_rate=audio_rate, crf=crf)
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise
    writer.close()


def write_video(path, frames, fps: int = 25, audio: np.ndarray | None = None, audio_rate: int = 16000) -> Path:
    """Writes a whole clip (frames and optional mono audio) at once."""
    with video_writer(path, fps=fps, audio_rate=audio_rate if audio is not None else None) as writer:
        for frame in frames:
            writer.write(frame)
        if audio is not None:
            writer.write_audio(audio)
    return Path(path)
