"""Audio-visual sync: how well mouth opening follows the loudness of the speech, and at what lag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))  # upper and lower inner-lip points facing each other
MOUTH_CORNERS = (48, 54)
JAW_ENDS = (0, 16)  # the face width at the ears, for normalising by face size
MAX_LAG = 5


@dataclass(frozen=True)
class SyncResult:
    correlation: float  # Pearson r at the best lag, -1 to 1
    lag: int  # frames; > 0 means the mouth moves `lag` frames after the sound


def mouth_opening(landmarks: np.ndarray, normalise_by: str = "mouth_width") -> np.ndarray:
    """Mouth opening per frame, float64 [T], unitless.

    The mean vertical gap between the three facing inner-lip point pairs (61-67, 62-66, 63-65), divided by
    the mouth width (corners 48-54, `normalise_by="mouth_width"`) or by the face width (jaw points 0-16,
    `"face_size"`), so it does not depend on the crop size.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    gaps = np.mean([np.linalg.norm(points[:, a] - points[:, b], axis=-1) for a, b in INNER_LIP_PAIRS], axis=0)
    ends = {"mouth_width": MOUTH_CORNERS, "face_size": JAW_ENDS}.get(normalise_by)
    if ends is None:
        raise ValueError(f"normalise_by must be 'mouth_width' or 'face_size', got {normalise_by!r}")
    scale = np.linalg.norm(points[:, ends[0]] - points[:, ends[1]], axis=-1)
    return gaps / np.maximum(scale, 1e-6)


def energy_envelope(audio: np.ndarray, n_frames: int, sample_rate: int = 16000, fps: float = 25.0) -> np.ndarray:
    """Audio RMS per video frame, float64 [n_frames], in units of full scale (samples in [-1, 1]).

    Frame t gets the samples played while it is shown, [t, t + 1) / fps seconds (640 samples at 16 kHz and
    25 fps); audio shorter than the video counts as silence.
    """
    hop = sample_rate / fps
    bounds = np.round(np.arange(n_frames + 1) * hop).astype(int)
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    audio = np.pad(audio, (0, max(0, bounds[-1] - len(audio))))
    return np.array([np.sqrt(np.mean(audio[a:b] ** 2)) for a, b in zip(bounds[:-1], bounds[1:])])


def av_sync(opening: np.ndarray, energy: np.ndarray, max_lag: int = MAX_LAG) -> SyncResult:
    """Best Pearson correlation between mouth opening and audio energy over lags of -max_lag..max_lag frames.

    At lag L the pairs are (opening[t], energy[t - L]) over the frames where both exist. The highest
    correlation wins (ties go to the smaller |L|). A series with no variation (a static face, silence)
    has no correlation with anything: the result is then 0.0 at lag 0.
    """
    opening = np.asarray(opening, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    if len(opening) != len(energy):
        raise ValueError(f"mouth opening has {len(opening)} frames but the energy envelope {len(energy)}")
    best = None
    for lag in sorted(range(-max_lag, max_lag + 1), key=abs):
        video = opening[max(lag, 0) : len(opening) + min(lag, 0)]
        audio = energy[max(-lag, 0) : len(energy) + min(-lag, 0)]
        if len(video) < 3 or np.ptp(video) == 0 or np.ptp(audio) == 0:
            continue
        correlation = float(np.corrcoef(video, audio)[0, 1])
        if best is None or correlation > best.correlation:
            best = SyncResult(correlation=correlation, lag=lag)
    return best if best is not None else SyncResult(correlation=0.0, lag=0)
