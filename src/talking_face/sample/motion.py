"""Per-frame motion tracks of a talking head: mouth opening from loudness and head sway (blinks: features.eyes)."""

from __future__ import annotations

import numpy as np


def mouth_opening(loudness: np.ndarray) -> np.ndarray:
    """Mouth opening per frame (0 closed .. 1 widest), proportional to the loudness at that frame."""
    return np.clip(np.asarray(loudness, dtype=np.float32), 0.0, 1.0)


def head_sway(n_frames: int, fps: float, rng: np.random.Generator, max_shift_px: float = 3.0, max_angle_deg: float = 1.5):
    """Smooth small head motion: (shifts [T, 2] px, angles [T] degrees) from slow sinusoids with random phases."""
    t = np.arange(n_frames) / fps

    def wander(amplitude: float) -> np.ndarray:
        parts = [np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t + rng.uniform(0, 2 * np.pi)) for _ in range(2)]
        return amplitude * rng.uniform(0.5, 1.0) * (parts[0] + parts[1]) / 2

    shifts = np.stack([wander(max_shift_px), wander(max_shift_px * 0.6)], axis=1)
    return shifts.astype(np.float32), wander(max_angle_deg).astype(np.float32)
