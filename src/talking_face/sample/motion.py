"""Per-frame motion tracks of a talking head: mouth opening from loudness, blinks, head sway."""

from __future__ import annotations

import numpy as np

BLINK_SECONDS = (0.16, 0.24)  # a blink lasts 4 to 6 frames at 25 fps


def mouth_opening(loudness: np.ndarray) -> np.ndarray:
    """Mouth opening per frame (0 closed .. 1 widest), proportional to the loudness at that frame."""
    return np.clip(np.asarray(loudness, dtype=np.float32), 0.0, 1.0)


def blink_onsets(seconds: float, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Blink start times (s): gaps jitter around 1/rate, so a long stretch averages `rate` blinks a second."""
    if rate <= 0:
        return np.zeros(0)
    period = 1.0 / rate
    onsets, t = [], rng.uniform(0.0, period)  # a random phase: clips start mid-way between blinks
    while t < seconds:
        onsets.append(t)
        t += period * rng.uniform(0.5, 1.5)
    return np.asarray(onsets)


def eye_closure(n_frames: int, fps: float, onsets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Eye closure per frame (0 open .. 1 shut): lids close fast, stay shut a moment, reopen slower."""
    closure = np.zeros(n_frames, dtype=np.float32)
    times = np.arange(n_frames) / fps
    for onset in onsets:
        duration = rng.uniform(*BLINK_SECONDS)
        phase = (times - onset) / duration
        shape = np.interp(phase, [0.0, 0.3, 0.5, 1.0], [0.0, 1.0, 1.0, 0.0], left=0.0, right=0.0)
        closure = np.maximum(closure, shape.astype(np.float32))
    return closure


def head_sway(n_frames: int, fps: float, rng: np.random.Generator, max_shift_px: float = 3.0, max_angle_deg: float = 1.5):
    """Smooth small head motion: (shifts [T, 2] px, angles [T] degrees) from slow sinusoids with random phases."""
    t = np.arange(n_frames) / fps

    def wander(amplitude: float) -> np.ndarray:
        parts = [np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t + rng.uniform(0, 2 * np.pi)) for _ in range(2)]
        return amplitude * rng.uniform(0.5, 1.0) * (parts[0] + parts[1]) / 2

    shifts = np.stack([wander(max_shift_px), wander(max_shift_px * 0.6)], axis=1)
    return shifts.astype(np.float32), wander(max_angle_deg).astype(np.float32)
