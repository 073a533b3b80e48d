"""A contact sheet: a grid of frames, one row per clip, for a person to look over what was generated."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from talking_face.sample.speech import frame_loudness


def pick_frames(loudness: np.ndarray, count: int) -> np.ndarray:
    """The quietest and the loudest frame, then the middles of the widest gaps between picks, in time order."""
    chosen = sorted({0, len(loudness) - 1, int(np.argmin(loudness)), int(np.argmax(loudness))})
    while len(chosen) < min(count, len(loudness)):
        widest = int(np.argmax(np.diff(chosen)))
        chosen.insert(widest + 1, (chosen[widest] + chosen[widest + 1]) // 2)
    return np.array(chosen[:count])


def contact_sheet(clips: Mapping[str, tuple], frames_per_clip: int = 6) -> Figure:
    """Rows of frames from each (frames, audio, fps, sample_rate) clip, titled by time and loudness."""
    names = sorted(clips)
    figure = Figure(figsize=(2.0 * frames_per_clip, 2.2 * len(names)), layout="constrained")
    axes = figure.subplots(len(names), frames_per_clip, squeeze=False)
    for row, name in zip(axes, names):
        frames, audio, fps, sample_rate = clips[name]
        loudness = frame_loudness(audio, sample_rate, fps, len(frames))
        chosen = pick_frames(loudness, frames_per_clip)
        for ax in row:
            ax.set_axis_off()
        for ax, index in zip(row, chosen):
            ax.imshow(frames[index])
            ax.set_title(f"{index / fps:.2f}s  loud {loudness[index]:.2f}", fontsize=8)
        row[0].text(-0.08, 0.5, name, rotation=90, va="center", ha="right", transform=row[0].transAxes, fontsize=9)
    figure.suptitle("Sample dataset: frames per clip (the mouth opens by the phoneme spoken)")
    return figure
