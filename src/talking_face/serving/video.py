"""Photo + speech file -> talking-face mp4 (H.264 at the model's 25 fps, the speech muxed in as AAC).

Frames stream from `animate` straight into the encoder, with the audio written alongside in step, so memory
stays flat however long the speech is; the writer renames a finished temp file into place, so the output is
never half-written, even on an error or Ctrl-C.
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from talking_face.features.audio import video_hop
from talking_face.features.eyes import DEFAULT_BLINK_RATE
from talking_face.media.audio import read_audio
from talking_face.media.errors import MediaError
from talking_face.media.video import video_writer
from talking_face.serving.animate import GeneratedFrame, animate, frame_count
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.photo import PasteBack, face_photo, read_image

SILENCE_DBFS = -60.0  # audio whose loudest sample stays below this is treated as silent
AAC_FRAME = 1024  # samples per AAC frame: audio goes to the encoder in whole frames until the last one
QUEUED_FRAMES = 8  # generated frames that may wait for the encoder thread


@dataclass(frozen=True)
class GeneratedVideo:
    path: Path
    frames: int
    fps: int
    duration_s: float  # of the speech
    width: int
    height: int


def read_speech(path: str | os.PathLike, sample_rate: int, silence_dbfs: float = SILENCE_DBFS) -> np.ndarray:
    """Mono float32 speech at `sample_rate` from any file PyAV reads; MediaError when empty or silent."""
    audio = read_audio(path, sample_rate)
    if audio.size == 0:
        raise MediaError(path, "audio is empty (no samples)")
    peak = float(np.max(np.abs(audio)))
    if peak <= 10 ** (silence_dbfs / 20):
        level = f"{20 * math.log10(peak):.0f} dBFS" if peak > 0 else "digital silence"
        raise MediaError(path, f"audio is silent (peak {level}, at or below {silence_dbfs:.0f} dBFS)")
    return audio


def default_threads() -> int:
    """Intra-op threads for the model: every core this process may use but one, which encodes. Generation
    is a chain of small per-frame ops, so more threads gain little and stall badly on a busy machine."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


@contextmanager
def torch_threads(count: int):
    """Runs the block with `count` torch intra-op threads, then restores the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def write_talking_video(
    out_path: str | os.PathLike,
    frames: Iterable[GeneratedFrame],
    audio: np.ndarray,
    sample_rate: int,
    fps: int,
    compose: Callable[[GeneratedFrame], np.ndarray] | None = None,
    progress: tqdm | None = None,
) -> Path:
    """Encodes `frames` (each passed through `compose` when given, else its crop) with `audio`, interleaved
    frame by frame.

    Composing and encoding run on a second thread, overlapping the model's next frames; at most
    QUEUED_FRAMES frames wait for it, so memory stays flat.
    """
    hop = video_hop(sample_rate, fps)
    written = 0

    def encode(t: int, frame: GeneratedFrame) -> None:
        nonlocal written
        writer.write(compose(frame) if compose else frame.image)
        due = min(len(audio), (t + 1) * hop) // AAC_FRAME * AAC_FRAME
        if due > written:
            writer.write_audio(audio[written:due])
            written = due
        if progress is not None:
            progress.update(1)

    with video_writer(out_path, fps=fps, audio_rate=sample_rate) as writer:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as encoder:
            queued: deque[Future] = deque()
            try:
                for t, frame in enumerate(frames):
                    queued.append(encoder.submit(encode, t, frame))
                    if len(queued) > QUEUED_FRAMES:
                        queued.popleft().result()  # waits for the encoder and re-raises its errors
                while queued:
                    queued.popleft().result()
            except BaseException:
                encoder.shutdown(wait=True, cancel_futures=True)
                raise
        writer.write_audio(audio[written:])
    return Path(out_path)


def generate_video(
    model: TalkingFaceModel,
    image_path: str | os.PathLike,
    audio_path: str | os.PathLike,
    out_path: str | os.PathLike,
    paste_back: bool = True,
    progress: bool = True,
    feather: float = 0.12,
    silence_dbfs: float = SILENCE_DBFS,
    threads: int | None = None,
    blink_rate: float = DEFAULT_BLINK_RATE,
    mouth_strength: float | None = None,
) -> GeneratedVideo:
    """The photo's face animated for the whole speech, written to `out_path` as an mp4.

    With `paste_back` the frames are the whole photo with the generated face composed in at its resolution
    (serving.photo.PasteBack); without it they are the model's face crops. `threads`: torch threads while
    generating (None: default_threads()). `blink_rate`: blinks per second (0: none). `mouth_strength`: how far
    the mouth changes from the photo, 0 to 1 (None: the model's calibrated strength).
    Raises MediaError (one line naming the file) for an unreadable image or audio, an image without a
    face, and empty or silent audio, before anything is written.
    """
    fps = int(model.features["fps"])
    sample_rate = int(model.features["audio"]["sample_rate"])
    photo = face_photo(read_image(image_path), model.image_size, float(model.features["crop_margin"]), image_path)
    audio = read_speech(audio_path, sample_rate, silence_dbfs)
    n_frames = frame_count(len(audio), sample_rate, fps)
    compose = PasteBack(photo, feather) if paste_back else None
    height, width = photo.image.shape[:2] if paste_back else photo.crop.shape[:2]
    with torch_threads(threads or default_threads()), tqdm(
        total=n_frames, desc="generating", unit="frame", disable=not progress
    ) as bar:
        frames = animate(model, photo.crop, audio, blink_rate, mouth_strength=mouth_strength)
        path = write_talking_video(out_path, frames, audio, sample_rate, fps, compose, bar)
    return GeneratedVideo(path, n_frames, fps, len(audio) / sample_rate, width // 2 * 2, height // 2 * 2)
