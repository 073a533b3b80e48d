"""The eyes: how closed they are per frame (from dlib's eye landmarks), the eye closure map that the MAN
`eyes` source reads, and the natural blink model that drives it at generation time.

    ear = eye_aspect_ratio(landmarks)                    # [T], about 0.3 open, near 0 shut
    closure = eye_closure(ear)                           # [T] in [0, 1], 0 at the clip's open level
    maps = eye_closure_maps(eye_blobs(landmarks[0], S), closure)    # [T, 1, S, S]
    closure = blink_schedule(n_frames, fps, rate=0.3, seed=0)      # generation: drawn blinks

The map of a frame is a Gaussian blob on each eye centre of the SOURCE frame (the generator animates that
photo, so the control sits where its eyes are), scaled by the frame's closure: zero when the eyes are open.
Training reads the closure from the real frame's landmarks; generation draws it from the blink model.
"""

from __future__ import annotations

import numpy as np

LEFT_EYE = np.arange(36, 42)
RIGHT_EYE = np.arange(42, 48)
OPEN_PERCENTILE = 90  # a clip's "open" EAR: robust to blinks and to the odd badly placed landmark
BLOB_SIGMA = 0.4  # Gaussian sigma of an eye blob, as a fraction of that eye's width (corner to corner)
BLOB_RADIUS = 3.0  # blobs are cut to zero beyond this many sigmas, so the map is exactly zero away from the eyes
DEFAULT_BLINK_RATE = 0.3  # blinks per second at generation: real GRID / VoxCeleb speakers blink 0.2-0.5 a second
BLINK_SECONDS = (0.16, 0.24)  # a blink lasts 4 to 6 frames at 25 fps
# Peak closure of a drawn blink: the EAR at the bottom of a real GRID blink, as dlib places the lids, is
# about 0.2-0.3 of the open EAR, so real blinks reach closures of 0.7-0.8 in training, never 1.
BLINK_DEPTH = 0.75


def eye_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """EAR per frame (Soukupova and Cech, 2016), the mean of both eyes, float64 [T], unitless.

    Per eye with points p1..p6 (36-41 and 42-47): (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)."""
    points = np.asarray(landmarks, dtype=np.float64)

    def one_eye(eye: np.ndarray) -> np.ndarray:
        p = points[:, eye]
        vertical = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
        horizontal = np.linalg.norm(p[:, 0] - p[:, 3], axis=-1)
        return vertical / (2.0 * np.maximum(horizontal, 1e-6))

    return (one_eye(LEFT_EYE) + one_eye(RIGHT_EYE)) / 2.0


def eye_closure(ear: np.ndarray, open_percentile: float = OPEN_PERCENTILE) -> np.ndarray:
    """Closure per frame, float32 [T] in [0, 1]: clip(1 - EAR / EAR_open), EAR_open the clip's percentile."""
    ear = np.asarray(ear, dtype=np.float64)
    if ear.size == 0:
        return np.zeros(0, dtype=np.float32)
    open_level = max(float(np.percentile(ear, open_percentile)), 1e-6)
    return np.clip(1.0 - ear / open_level, 0.0, 1.0).astype(np.float32)


def eye_blobs(points: np.ndarray, size: int) -> np.ndarray:
    """float32 [size, size]: a Gaussian of peak 1 on each eye centre of one frame's 68 points (x, y in
    pixels of a size x size crop), sigma BLOB_SIGMA of the eye's width, zero beyond BLOB_RADIUS sigmas."""
    points = np.asarray(points, dtype=np.float64)
    grid = np.arange(size, dtype=np.float64)
    blobs = np.zeros((size, size), dtype=np.float64)
    for eye in (LEFT_EYE, RIGHT_EYE):
        centre = points[eye].mean(0)
        sigma = max(BLOB_SIGMA * np.linalg.norm(points[eye[0]] - points[eye[3]]), 0.5)
        distance2 = ((grid[None, :] - centre[0]) ** 2 + (grid[:, None] - centre[1]) ** 2) / sigma**2
        blob = np.where(distance2 <= BLOB_RADIUS**2, np.exp(-0.5 * distance2), 0.0)
        blobs = np.maximum(blobs, blob)
    return blobs.astype(np.float32)


def eye_closure_maps(blobs: np.ndarray, closure: np.ndarray) -> np.ndarray:
    """The MAN `eyes` input of each frame: float32 [T, 1, S, S] = closure[t] * blobs."""
    closure = np.asarray(closure, dtype=np.float32)
    return closure[:, None, None, None] * blobs[None, None]


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


def blink_closure(n_frames: int, fps: float, onsets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Eye closure per frame (0 open .. 1 shut): lids close fast, stay shut a moment, reopen slower."""
    closure = np.zeros(n_frames, dtype=np.float32)
    for onset in onsets:
        duration = rng.uniform(*BLINK_SECONDS)
        frames = np.arange(max(0, int(onset * fps)), min(n_frames, int((onset + duration) * fps) + 2))
        phase = (frames / fps - onset) / duration
        shape = np.interp(phase, [0.0, 0.3, 0.5, 1.0], [0.0, 1.0, 1.0, 0.0], left=0.0, right=0.0)
        closure[frames] = np.maximum(closure[frames], shape.astype(np.float32))
    return closure


def blink_schedule(n_frames: int, fps: float, rate: float, seed: int = 0, depth: float = BLINK_DEPTH) -> np.ndarray:
    """Closure per frame, float32 [T], of blinks drawn at `rate` per second (0: none); the same seed gives
    the same blinks, and a longer schedule begins with a shorter one (onsets and durations come from two
    streams), so a live stream of unknown length blinks as the same clip generated from a file."""
    onset_rng, duration_rng = (np.random.default_rng([seed, stream]) for stream in (0, 1))
    return depth * blink_closure(n_frames, fps, blink_onsets(n_frames / fps, rate, onset_rng), duration_rng)
