"""Losses of the MAN GAN and of the motion predictors.

Discriminator outputs are the lists of `ScaleOutput` returned by `MultiScaleDiscriminator`; each loss
averages over the scales. Images are [B,3,H,W] in [-1,1].

    d_loss = discriminator_adversarial_loss(real, fake) + cam_loss_discriminator(real, fake)
    g_loss = (generator_adversarial_loss(fake) + cam_loss_generator(fake) + feature_matching_loss(real, fake)
              + reconstruction_loss(image, target, mouth_weight) + perceptual(image, target) + predictor_loss(...)
              + mask_sparsity_loss(mask) + mask_smoothness_loss(mask) + motion_magnitude_loss(motion)
              + reconstruction_loss(painted, target)     # the last four: composite head only
              + region_loss(image, target, eye_closure_maps))

Adversarial mode: "hinge" by default. The paper writes the GAN terms in the log-likelihood form and trains
with Adam(lr 0.002, beta1 0, beta2 0.9), SPADE's recipe, whose objective is the hinge loss; "lsgan"
(pix2pixHD's multi-scale objective) is the alternative. The CAM loss keeps eq. 3's log form: a binary
cross-entropy on the CAM logits, an auxiliary real/fake classifier trained by D and fooled by G.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talking_face.models.discriminator import ScaleOutput
from talking_face.models.predictors import warp
from talking_face.models.sync_expert import lower_face

log = logging.getLogger(__name__)
ADVERSARIAL_MODES = ("hinge", "lsgan")


def _check_mode(mode: str) -> None:
    if mode not in ADVERSARIAL_MODES:
        raise ValueError(f"adversarial loss mode must be one of {ADVERSARIAL_MODES}, got {mode!r}")


def discriminator_adversarial_loss(
    real: Sequence[ScaleOutput], fake: Sequence[ScaleOutput], mode: str = "hinge"
) -> torch.Tensor:
    _check_mode(mode)
    losses = []
    for real_scale, fake_scale in zip(real, fake, strict=True):
        if mode == "hinge":
            losses.append(F.relu(1 - real_scale.patch).mean() + F.relu(1 + fake_scale.patch).mean())
        else:
            real_loss = F.mse_loss(real_scale.patch, torch.ones_like(real_scale.patch))
            losses.append(real_loss + F.mse_loss(fake_scale.patch, torch.zeros_like(fake_scale.patch)))
    return torch.stack(losses).mean()


def generator_adversarial_loss(fake: Sequence[ScaleOutput], mode: str = "hinge") -> torch.Tensor:
    _check_mode(mode)
    if mode == "hinge":
        return torch.stack([-scale.patch.mean() for scale in fake]).mean()
    return torch.stack([F.mse_loss(s.patch, torch.ones_like(s.patch)) for s in fake]).mean()


def cam_loss_discriminator(real: Sequence[ScaleOutput], fake: Sequence[ScaleOutput]) -> torch.Tensor:
    """Eq. 3: log D_cam(real) + log(1 - D_cam(fake)), maximised by D (so minimised here with BCE)."""
    losses = [
        F.binary_cross_entropy_with_logits(r.cam_logit, torch.ones_like(r.cam_logit))
        + F.binary_cross_entropy_with_logits(f.cam_logit, torch.zeros_like(f.cam_logit))
        for r, f in zip(real, fake, strict=True)
    ]
    return torch.stack(losses).mean()


def cam_loss_generator(fake: Sequence[ScaleOutput]) -> torch.Tensor:
    """The generator's side of eq. 3 (non-saturating): make the CAM classifier call the fake real."""
    return torch.stack(
        [F.binary_cross_entropy_with_logits(f.cam_logit, torch.ones_like(f.cam_logit)) for f in fake]
    ).mean()


def feature_matching_loss(real: Sequence[ScaleOutput], fake: Sequence[ScaleOutput]) -> torch.Tensor:
    """L1 between D's intermediate maps on real and fake frames, averaged over layers and scales."""
    losses = []
    for real_scale, fake_scale in zip(real, fake, strict=True):
        pairs = zip(real_scale.features, fake_scale.features, strict=True)
        losses.append(torch.stack([F.l1_loss(f, r.detach()) for r, f in pairs]).mean())
    return torch.stack(losses).mean()


def reconstruction_loss(image: torch.Tensor, target: torch.Tensor, mouth_weight: float = 1.0) -> torch.Tensor:
    """Eq. 5: L1 on the whole frame plus `mouth_weight` times L1 on its lower half (the mouth area)."""
    lower = image.shape[-2] // 2
    return F.l1_loss(image, target) + mouth_weight * F.l1_loss(image[..., lower:, :], target[..., lower:, :])


def region_loss(image: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """L1 averaged over a weighted region ([B,1,H,W] weights >= 0); 0 where the batch has no region. With the
    eye closure maps as weights it is the lids' error during blinks, a few pixels the whole-frame L1 drowns."""
    total = weights.sum()
    if total <= 0:
        return image.new_zeros(())
    return ((image - target).abs().mean(1, keepdim=True) * weights).sum() / total


def expert_sync_loss(expert: nn.Module, frames: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Wav2Lip's expert sync loss: -log of the frozen lip-sync expert's cosine similarity, mapped to (0, 1],
    between windows of generated frames [N, frames, 3, S, S] in [-1, 1] and their speech [N, n_mels, steps];
    returns (loss, the mean cosine similarity). A discriminator cannot teach sync from a few people."""
    faces = lower_face((frames + 1) / 2, expert.config)
    similarity = (expert.embed_video(faces) * expert.embed_audio(mel.to(faces.dtype))).sum(-1)
    return -torch.log(((similarity + 1) / 2).clamp_min(1e-4)).mean(), similarity.mean().detach()


def mask_sparsity_loss(mask: torch.Tensor, free: torch.Tensor | None = None) -> torch.Tensor:
    """L1 of the composite mask (it is >= 0): paint only where the photo cannot provide the pixels. `free`
    [B,1,H,W] in [0, 1] marks where the mask costs nothing (the moving parts, `features.parts`)."""
    return mask.mean() if free is None else (mask * (1 - free)).mean()


def mask_smoothness_loss(mask: torch.Tensor) -> torch.Tensor:
    """Total variation of the composite mask: few, smooth regions rather than speckle."""
    return (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean() + (mask[..., 1:] - mask[..., :-1]).abs().mean()


def motion_magnitude_loss(motion: torch.Tensor) -> torch.Tensor:
    """Mean |motion| in pixels of the composite head's warp: head motion cannot be told from speech, so an
    unpenalised warp learns to smear the photo towards the average pose instead of moving only the jaw."""
    return motion.abs().mean()


def mouth_motion_loss(motion: torch.Tensor, points: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Mean L1 in pixels between the warp [B,2,S,S] (pixels) at the frame's lip and jaw points [B,P,2] and
    their displacements back to the source's [B,P,2] (both in grid_sample units, `features.parts.mouth_motion`):
    the image losses alone leave the mouth shut, the photo's own mouth being the safest guess for a new face."""
    sampled = F.grid_sample(motion, points[:, None].to(motion.dtype), align_corners=False)[:, :, 0]  # [B,2,P]
    target = shifts.to(motion.dtype).transpose(1, 2) * (motion.shape[-1] / 2)
    return (sampled - target).abs().mean()


def predictor_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of a predicted heatmap or flow against the ground truth from the feature files."""
    return F.mse_loss(prediction, target.to(prediction.dtype))


def flow_reconstruction_loss(previous: torch.Tensor, following: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """L1 between the previous frame and the following frame warped by the flow previous -> following.

    Farneback's convention (the features' flow) is previous(p) ~ following(p + flow(p)), so sampling the
    following frame at p + flow reconstructs the previous one exactly, with no flow inversion.
    """
    return F.l1_loss(warp(following, flow), previous)


# torchvision's VGG19 `features` layout: channel counts, "M" = 2x2 max pool; indices match its state_dict.
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
_RELU_X_1 = (1, 6, 11, 20, 29)  # relu1_1 .. relu5_1
_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # pix2pixHD's weights: deeper layers count more
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers[: _RELU_X_1[-1] + 1])


class PerceptualLoss(nn.Module):
    """VGG19 perceptual L1 from a local state_dict (torchvision's key names); 0 with a warning without one."""

    def __init__(self, weights_path: str | Path | None):
        super().__init__()
        self.enabled = weights_path is not None and Path(weights_path).is_file()
        if not self.enabled:
            log.warning("no VGG19 weights at %s: the perceptual loss is off (returns 0)", weights_path)
            return
        self.features = _vgg19_features()
        self._load(Path(weights_path))
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # any unreadable file gets the same one-line error
            raise ValueError(f"{path}: cannot read VGG19 weights ({type(error).__name__}: {error})") from None
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a VGG19 state_dict, got {type(state).__name__}")
        if not any(str(key).startswith("features.") for key in state):
            state = {f"features.{key}": value for key, value in state.items()}
        wanted = {key: f"features.{key}" for key in self.features.state_dict()}
        missing = [key for key in wanted.values() if key not in state]
        if missing:
            raise ValueError(f"{path}: not a VGG19 state_dict (missing {', '.join(missing[:3])})")
        try:
            self.features.load_state_dict({short: state[key] for short, key in wanted.items()})
        except RuntimeError as error:
            raise ValueError(f"{path}: VGG19 weights do not fit ({str(error).splitlines()[0]})") from None

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        if self.enabled:
            self.features.eval()  # frozen feature extractor
        return self

    def forward(self, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return image.new_zeros(())
        x = ((torch.cat([image, target]) + 1) / 2 - self.mean) / self.std
        loss = image.new_zeros(())
        weights = iter(_LAYER_WEIGHTS)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _RELU_X_1:
                fake, real = x.chunk(2)
                loss = loss + next(weights) * F.l1_loss(fake, real.detach())
        return loss
