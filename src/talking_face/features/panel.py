"""One picture of a clip's features for a person to check (like the paper's Figure 7).

Five frames across the clip, each shown as the crop with its landmarks, the crop under its contour
heatmaps, and the flow as a colour wheel; below, the log-mel, F0 and energy over time with the shown
frames marked.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from talking_face.features.flow import flow_to_color

N_SHOWN = 5


def feature_panel(features: dict, title: str = "") -> Figure:
    """A matplotlib Figure (no pyplot, so no GUI backend) of one clip's feature record."""
    frames, heatmaps, flow = features["frames"], features["heatmaps"], features["flow"]
    n_frames, size = len(frames), frames.shape[1]
    fps = float(features["fps"])
    shown = np.unique(np.linspace(0, max(n_frames - 2, 0), N_SHOWN).round().astype(int))
    flow_scale = max(float(np.hypot(*flow[shown].astype(np.float32).transpose(1, 0, 2, 3)).max()), 1e-3)
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)  # heatmaps (96x96) cover exactly the crop

    figure = Figure(figsize=(2.2 * N_SHOWN, 12), layout="constrained")
    grid = figure.add_gridspec(6, N_SHOWN, height_ratios=[1, 1, 1, 0.9, 0.6, 0.6])
    for column, t in enumerate(shown):
        crop_axes, heat_axes, flow_axes = (figure.add_subplot(grid[row, column]) for row in range(3))
        crop_axes.imshow(frames[t], extent=extent)
        crop_axes.scatter(*features["landmarks"][t].T, s=4, c="lime")
        crop_axes.set_title(f"frame {t} ({t / fps:.2f} s)", fontsize=9)
        heat_axes.imshow(frames[t], extent=extent, alpha=0.5)
        heat_axes.imshow(heatmaps[t].max(axis=0), extent=extent, cmap="inferno", alpha=0.6, vmin=0, vmax=255)
        flow_axes.imshow(flow_to_color(flow[t], flow_scale), extent=extent)
        for axes in (crop_axes, heat_axes, flow_axes):
            axes.set_xticks([])
            axes.set_yticks([])
        if column == len(shown) - 1:
            _colour_key(flow_axes)
        if column == 0:
            crop_axes.set_ylabel("crop + landmarks")
            heat_axes.set_ylabel("15 contour heatmaps")
            flow_axes.set_ylabel(f"flow to t+1 (max {flow_scale:.1f} px)")

    seconds = np.arange(n_frames) / fps
    mel_axes = figure.add_subplot(grid[3, :])
    mel = mel_axes.imshow(features["mel"].T, origin="lower", aspect="auto", cmap="magma",
                          extent=(-0.5 / fps, (n_frames - 0.5) / fps, 0, features["mel"].shape[1]))
    figure.colorbar(mel, ax=mel_axes, label="dB", pad=0.01)
    mel_axes.set_ylabel("mel band")
    f0_axes = figure.add_subplot(grid[4, :], sharex=mel_axes)
    f0 = np.where(features["f0"] > 0, features["f0"], np.nan)
    f0_axes.plot(seconds, f0, ".-", color="tab:blue")
    f0_axes.set_ylabel("F0 (Hz)")
    voiced = float((features["f0"] > 0).mean())
    f0_axes.set_title(f"pitch: {voiced:.0%} of frames voiced (gaps are unvoiced)", fontsize=9)
    energy_axes = figure.add_subplot(grid[5, :], sharex=mel_axes)
    energy_axes.plot(seconds, features["energy"], color="tab:orange")
    energy_axes.set_ylim(0, 255)
    energy_axes.set_ylabel("energy level")
    energy_axes.set_xlabel("time (s)")
    for axes in (mel_axes, f0_axes, energy_axes):
        for t in shown:
            axes.axvline(t / fps, color="white" if axes is mel_axes else "grey", lw=0.8, ls="--")
    figure.suptitle(title or "clip features")
    return figure


def _colour_key(axes) -> None:
    """A small colour wheel in the corner: the hue of each flow direction, brighter for faster."""
    steps = np.linspace(-1, 1, 41)
    dx, dy = np.meshgrid(steps, steps)
    wheel = flow_to_color(np.stack([dx, dy]), max_magnitude=1.0)
    wheel[np.hypot(dx, dy) > 1] = 255
    key = axes.inset_axes([0.68, 0.68, 0.3, 0.3])
    key.imshow(wheel)
    key.set_axis_off()
