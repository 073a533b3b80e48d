"""Per-frame motion tracks of a talking head: mouth opening from the phonemes spoken and head sway
(blinks: features.eyes)."""

from __future__ import annotations

import numpy as np

from talking_face.features.phonemes import OPENNESS, PHONE_FRAME_RATE, Phone

RAMP_SECONDS = 0.1  # lips take this long to go from shut to the widest opening


def mouth_opening(phones: list[Phone], n_frames: int, fps: float, ramp_seconds: float = RAMP_SECONDS) -> np.ndarray:
    """float32 [n_frames] mouth opening (0 shut .. 1 widest) while each video frame is shown, [t, t + 1) / fps.

    Each phoneme's viseme openness (`OPENNESS`, the table the phoneme sync measure uses) is a ceiling over its
    time, and the lips move no faster than the full range per `ramp_seconds`: the highest track under both,
    so lips close fully for every p, b and m, start closing before it and open again after it.
    """
    ceiling = np.zeros(int(np.ceil(n_frames / fps * PHONE_FRAME_RATE)) + 1)
    for phone in phones:
        start, end = int(round(phone.start_s * PHONE_FRAME_RATE)), int(round(phone.end_s * PHONE_FRAME_RATE))
        ceiling[start:max(end, start + 1)] = OPENNESS.get(phone.label, 0.0)
    step = 1.0 / (ramp_seconds * PHONE_FRAME_RATE)
    opening = ceiling.copy()
    for t in range(1, len(opening)):  # a forward then a backward pass give the highest track within the slope
        opening[t] = min(opening[t], opening[t - 1] + step)
    for t in range(len(opening) - 2, -1, -1):
        opening[t] = min(opening[t], opening[t + 1] + step)
    bounds = np.round(np.arange(n_frames + 1) * PHONE_FRAME_RATE / fps).astype(int)
    return np.array([opening[a:max(b, a + 1)].mean() for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.float32)


def head_sway(n_frames: int, fps: float, rng: np.random.Generator, max_shift_px: float = 3.0, max_angle_deg: float = 1.5):
    """Smooth small head motion: (shifts [T, 2] px, angles [T] degrees) from slow sinusoids with random phases."""
    t = np.arange(n_frames) / fps

    def wander(amplitude: float) -> np.ndarray:
        parts = [np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t + rng.uniform(0, 2 * np.pi)) for _ in range(2)]
        return amplitude * rng.uniform(0.5, 1.0) * (parts[0] + parts[1]) / 2

    shifts = np.stack([wander(max_shift_px), wander(max_shift_px * 0.6)], axis=1)
    return shifts.astype(np.float32), wander(max_angle_deg).astype(np.float32)
