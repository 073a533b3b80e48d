"""Pictures of training progress for MLflow: generated vs real frames (with the composite head's mask,
warped source and painted pixels), predicted vs true motion."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from talking_face.features.flow import flow_to_color
from talking_face.models import GeneratorOutput, warp


def to_rgb(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3]."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def grey_to_rgb(maps: torch.Tensor) -> np.ndarray:
    """[B, H, W] in [0, 1] -> uint8 [B, H, W, 3]."""
    grey = (maps.detach().float().clamp(0, 1) * 255).round().byte().cpu().numpy()
    return np.repeat(grey[..., None], 3, axis=-1)


def tile(rows: list[np.ndarray], count: int = 4) -> np.ndarray:
    """Stacks rows of [B, H, W, 3] images (same H, W) into one picture of `count` columns."""
    return np.concatenate([np.concatenate(list(row[:count]), axis=1) for row in rows], axis=0)


def frame_grid(source, real, output: GeneratorOutput, composite: bool = True) -> np.ndarray:
    """Rows: source, real, generated, the generator's CAM attention; with the composite head also its mask,
    the source warped by its motion and its painted pixels."""
    rows = [to_rgb(source), to_rgb(real), to_rgb(output.image), grey_to_rgb(output.attention[:, 0])]
    if composite:
        warped = warp(source.to(output.motion.dtype), output.motion)
        rows += [grey_to_rgb(output.mask[:, 0]), to_rgb(warped), to_rgb(output.painted)]
    return tile(rows)


def motion_grid(predicted_heatmaps, true_heatmaps, predicted_flow, true_flow) -> np.ndarray:
    """Rows: predicted and true heatmaps (all 15 summed), predicted and true flow as colour wheels."""
    top = float(true_flow.abs().max().clamp(min=1e-3))
    flows = [np.stack([flow_to_color(f, top) for f in field.detach().float().cpu().numpy()]) for field in (predicted_flow, true_flow)]
    heat = [grey_to_rgb(h.detach().float().sum(1).clamp(0, 1)) for h in (predicted_heatmaps, true_heatmaps)]
    if heat[0].shape[1:3] != flows[0].shape[1:3]:
        # heatmaps are 96x96 and flow is crop-sized: bring flows to the heatmap size for the grid
        flows = [np.stack([cv2.resize(f, heat[0].shape[1:3][::-1]) for f in field]) for field in flows]
    return tile([heat[0], heat[1], flows[0], flows[1]])


def history_figure(history: pd.DataFrame, columns: tuple[str, ...], title: str) -> Figure:
    """One panel per logged metric of a run's history against its step."""
    figure = Figure(figsize=(3.4 * len(columns), 3), layout="constrained")
    for axis, column in zip(figure.subplots(1, len(columns), squeeze=False)[0], columns):
        if column in history:
            axis.plot(history["step"], history[column])
        axis.set_xlabel("step")
        axis.set_title(column)
    figure.suptitle(title, fontsize="medium")
    return figure
