"""Blinks from the eye aspect ratio (EAR, `features.eyes.eye_aspect_ratio`: about 0.3 for an open eye and
near 0 for a closed one), and the EAR curve plot (paper's Figure 8).

Evaluation counts blinks on the EAR relative to the clip's own open level (`relative_ear`), closed below
RELATIVE_THRESHOLD of it: where dlib places the lids depends on the face's size, and on 64-pixel crops a real
GRID blink bottoms out at an EAR of 0.21-0.23, never under the usual absolute 0.2, while it still drops
to 0.55-0.6 of the open level (at full resolution the same blinks reach 0.14-0.19, 0.4-0.55 of it).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import chi2

from talking_face.features.eyes import OPEN_PERCENTILE

EAR_THRESHOLD = 0.2
RELATIVE_THRESHOLD = 0.7
BLINK_MIN_FRAMES = 2


def relative_ear(ear: np.ndarray) -> np.ndarray:
    """EAR over the clip's open level (its OPEN_PERCENTILE, robust to blinks): about 1 open, near 0 shut."""
    ear = np.asarray(ear, dtype=np.float64)
    if ear.size == 0:
        return ear
    return ear / max(float(np.percentile(ear, OPEN_PERCENTILE)), 1e-6)


def detect_blinks(
    ear: np.ndarray, threshold: float = EAR_THRESHOLD, min_frames: int = BLINK_MIN_FRAMES
) -> list[tuple[int, int]]:
    """Blinks as (first frame, last frame + 1): runs of at least `min_frames` frames with EAR < threshold."""
    closed = np.concatenate([[False], np.asarray(ear) < threshold, [False]])
    edges = np.flatnonzero(np.diff(closed.astype(np.int8)))
    runs = edges.reshape(-1, 2)  # alternating closing (False -> True) and opening (True -> False) edges
    return [(int(start), int(end)) for start, end in runs if end - start >= min_frames]


def blinks_per_second(
    ear: np.ndarray, fps: float, threshold: float = EAR_THRESHOLD, min_frames: int = BLINK_MIN_FRAMES
) -> float:
    """Blink rate in blinks per second: the number of detected blinks over the clip's length T / fps."""
    ear = np.asarray(ear)
    if len(ear) == 0:
        return float("nan")
    return len(detect_blinks(ear, threshold, min_frames)) / (len(ear) / fps)


def rate_interval(count: float, seconds: float, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Garwood) Poisson interval of a rate of `count` events in `seconds`, per second: a few
    blinks in a few seconds say little (2 blinks in 6 s: 0.04-1.2/s)."""
    alpha = 1 - confidence
    low = chi2.ppf(alpha / 2, 2 * count) / 2 if count > 0 else 0.0
    high = chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return float(low / seconds), float(high / seconds)


def plot_ear_curve(
    curves: dict[str, np.ndarray],
    fps: float,
    threshold: float = EAR_THRESHOLD,
    min_frames: int = BLINK_MIN_FRAMES,
    title: str = "Eye aspect ratio",
    ylabel: str = "EAR",
) -> Figure:
    """The EAR of one or more sequences (e.g. {"real": ..., "generated": ...}) over time in seconds, with
    the threshold as a dashed line and each detected blink shaded in its curve's colour. Save the returned
    figure with `fig.savefig(path)`; it uses no pyplot state, so it works under the Agg backend.
    """
    figure = Figure(figsize=(8, 3), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for name, ear in curves.items():
        ear = np.asarray(ear)
        times = np.arange(len(ear)) / fps
        (line,) = axes.plot(times, ear, label=name)
        for start, end in detect_blinks(ear, threshold, min_frames):
            axes.axvspan(start / fps, end / fps, color=line.get_color(), alpha=0.2)
    axes.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    axes.set_xlabel("time (s)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(loc="lower right")
    return figure
