"""Talking, measured: the lip-sync expert's distance, confidence and offset (LSE-D / LSE-C style, ours), the
phoneme-timed sync of the mouth, and how the mouth's motion and interior compare with the real video's.

The expert (`models.sync_expert`) compares every window of lower-face frames with the speech at offsets
of -max_offset..max_offset frames (SyncNet's 15) and averages the cosine distance per offset. As SyncNet
reports it, the offset is where that distance is lowest; the distance and the confidence are read at the
clip as it is played, allowing a frame either way (the lowest distance within a frame of 0, and the median
over all offsets minus it): a clip whose speech is half a second late is out of sync even though the expert
can find where it would match, and a still face has the same distance at every offset (confidence near 0).
Offsets share `sync.av_sync`'s sign: > 0, the mouth moves after the sound.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from talking_face.conditioning.sync_inputs import expert_faces, expert_mel, face_windows, mel_windows, window_starts
from talking_face.models.sync_expert import SyncExpert

MAX_OFFSET = 15  # frames either side, as SyncNet searches
PLAYED = 1  # frames either way of 0 that still count as the clip as played
INNER_LIPS = list(range(60, 68))


@dataclass(frozen=True)
class ExpertSync:
    offset: int  # frames where the lips and the speech match best; > 0: the mouth moves after the sound
    distance: float  # mean cosine distance as played (within a frame of 0), lower is better
    confidence: float  # median distance over offsets minus that, higher is better


NO_SYNC = ExpertSync(offset=0, distance=float("nan"), confidence=float("nan"))


def expert_sync(
    expert: SyncExpert, frames: np.ndarray, audio: np.ndarray, sample_rate: int, fps: float, max_offset: int = MAX_OFFSET
) -> ExpertSync:
    """The expert's verdict on face crops uint8 [T, S, S, 3] with their mono audio (NO_SYNC for a clip too
    short for two windows)."""
    config = expert.config
    mel = expert_mel(audio, len(frames), sample_rate, fps, config)
    starts = window_starts(len(frames), config)
    if len(starts) < 2:
        return NO_SYNC
    offsets = np.arange(-max_offset, max_offset + 1)
    expert.eval()
    with torch.no_grad():
        video = expert.embed_video(torch.from_numpy(face_windows(expert_faces(frames, config), starts, config)))
        speech = expert.embed_audio(torch.from_numpy(mel_windows(mel, starts, config)))
        similarity = (video @ speech.T).numpy()  # [lips at s, speech at s']
    distances = np.full(len(offsets), np.nan)
    for index, offset in enumerate(offsets):  # the lips at s against the speech at s + offset, where both exist
        lips = starts[max(0, -offset) : len(starts) - max(0, offset)]
        if len(lips):
            distances[index] = float(np.mean(1 - similarity[lips, lips + offset]))
    played = distances[np.abs(offsets) <= PLAYED]
    if np.isnan(distances).all() or np.isnan(played).all():
        return NO_SYNC
    best = int(np.nanargmin(distances))
    return ExpertSync(offset=int(-offsets[best]), distance=float(np.nanmin(played)),
                      confidence=float(np.nanmedian(distances) - np.nanmin(played)))  # fmt: skip


def delayed(audio: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    """The audio `seconds` later (silence before it, its end cut): the same clip, out of sync."""
    shift = int(round(seconds * sample_rate))
    audio = np.asarray(audio)
    return np.concatenate([np.zeros(shift, dtype=audio.dtype), audio[: len(audio) - shift]])


def motion_agreement(opening: np.ndarray, real_opening: np.ndarray) -> dict[str, float]:
    """How the mouth opening follows the real one over a clip, blind to where each mouth starts:
    motion_corr, the Pearson r of the two (0 when either does not move) and motion_amplitude, the ratio of
    their standard deviations (1: opens and shuts as far as the real mouth; 0: still)."""
    opening, real_opening = np.asarray(opening, np.float64), np.asarray(real_opening, np.float64)
    spread, real_spread = float(np.std(opening)), float(np.std(real_opening))
    if spread < 1e-9 or real_spread < 1e-9:
        correlation = 0.0
    else:
        correlation = float(np.corrcoef(opening, real_opening)[0, 1])
    return {"motion_corr": correlation, "motion_amplitude": spread / real_spread if real_spread > 1e-9 else float("nan")}


def mouth_interior(frames: np.ndarray, landmarks: np.ndarray, chosen: np.ndarray) -> float:
    """Mean grey level (0-255) inside the inner lips (dlib points 60-67, outline included) over the
    `chosen` frames (bool [T]); NaN when none is chosen. A real open mouth is dark; a pale patch is not."""
    values = []
    for frame, points in zip(np.asarray(frames)[chosen], np.asarray(landmarks)[chosen]):
        mask = np.zeros(frame.shape[:2], np.uint8)
        polygon = np.round(points[INNER_LIPS]).astype(np.int32)
        cv2.fillPoly(mask, [polygon], 1)
        cv2.polylines(mask, [polygon], True, 1)
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        values.append(float(grey[mask > 0].mean()))
    return float(np.mean(values)) if values else float("nan")
