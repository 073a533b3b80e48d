"""Blinks from the eye aspect ratio (EAR, `features.eyes.eye_aspect_ratio`: about 0.3 for an open eye and
near 0 for a closed one), and the EAR curve plot (paper's Figure 8).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

EAR_THRESHOLD = 0.2
BLINK_MIN_FRAMES = 2


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


def plot_ear_curve(
    curves: dict[str, np.ndarray],
    fps: float,
    threshold: float = EAR_THRESHOLD,
    min_frames: int = BLINK_MIN_FRAMES,
    title: str = "Eye aspect ratio",
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
    axes.set_ylabel("EAR")
    axes.set_title(title)
    axes.legend(loc="lower right")
    return figure
