"""Pretraining of both motion predictors on the features' ground truth (paper section 3.3).

The keypoint hourglass regresses the 15 contour heatmaps of frame t, the flow UNet the Farneback flow from
frame t-1 to t, both from the previous frames and the mel window; the flow also gets the reconstruction
term (frame t-1 recovered by warping frame t with the predicted flow), as the paper adds for it.
"""

from __future__ import annotations

import torch

from talking_face.models import FlowPredictor, KeypointPredictor, model_config
from talking_face.models.losses import flow_reconstruction_loss, predictor_loss
from talking_face.training.data import frame_inputs
from talking_face.training.figures import motion_grid
from talking_face.training.loop import run_task, seed_everything


class PredictorTask:
    def __init__(self, config: dict):
        models = model_config(config["preset"], config.get("variant"), config.get("overrides"))
        self.modules = {"keypoint": KeypointPredictor(models.keypoint), "flow": FlowPredictor(models.flow)}
        betas = tuple(config["betas"])
        self.optimizers = {
            name: torch.optim.Adam(module.parameters(), lr=config["lr"], betas=betas)
            for name, module in self.modules.items()
        }
        self.flow_reconstruction_weight = config["flow_reconstruction_weight"]
        self._last = None

    def step(self, batch: dict[str, torch.Tensor], autocast) -> dict[str, float]:
        previous, frame = batch["previous"], frame_inputs(batch, 0)  # pretraining reads single frames
        with autocast:
            heatmaps = self.modules["keypoint"](previous, frame["mel"])
            flow = self.modules["flow"](previous, frame["mel"])
            keypoint_loss = predictor_loss(heatmaps, frame["heatmaps"])
            flow_mse = predictor_loss(flow, frame["flow"])
            reconstruction = flow_reconstruction_loss(previous[:, -3:], frame["target"], flow)
            flow_loss = flow_mse + self.flow_reconstruction_weight * reconstruction
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        (keypoint_loss + flow_loss).backward()
        for optimizer in self.optimizers.values():
            optimizer.step()
        self._last = (heatmaps, flow, frame)
        return {"keypoint_mse": keypoint_loss.item(), "flow_mse": flow_mse.item(), "flow_reconstruction": reconstruction.item()}

    def snapshot(self, batch, logger, step: int) -> None:
        heatmaps, flow, frame = self._last
        logger.image(motion_grid(heatmaps, frame["heatmaps"], flow, frame["flow"]), f"pretrain/motion_{step:06d}.png")


def pretrain_loop(config: dict) -> None:
    """Ray Train per-worker entry point."""
    seed_everything(config["seed"])
    run_task(PredictorTask(config), config)
