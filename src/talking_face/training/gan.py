"""The MAN GAN training step: discriminator update, then generator + jointly trained motion predictor.

Generator loss (paper section 3.4): adversarial + CAM (eq. 3) + feature matching + L1 reconstruction on the
whole frame plus the weighted lower half (eq. 5) + the predictor's MSE + VGG perceptual (only with local
weights); with the composite head, plus the mask's sparsity (L1) and smoothness (total variation); the
L1 inside the real inner lips (`mouth_interior`: an open mouth shows a dark interior, not a pale patch); and,
given the frozen lip-sync expert, its sync loss on every 5-frame window of the generated sequences (`sync`). Frames are conditioned as at generation time: a batch holds short sequences, the first frame of
each sees the real frames before it (the source repeated before the clip starts) and every later frame the
model's own previous outputs. Trained on real previous frames only, the jointly trained predictor passes
their appearance on to the generator, which then drifts when generation feeds it its own frames;
by default the generator's losses therefore do not reach the predictor (see `step`).
"""

from __future__ import annotations

import torch

from talking_face.models import MANGenerator, MultiScaleDiscriminator, ScaleOutput, model_config, rho_table
from talking_face.models import losses
from talking_face.models.sync_expert import load_expert
from talking_face.conditioning.inputs import (
    generator_conditioning,
    motion_for_generator,
    motion_predictor,
    motion_target,
    next_context,
)
from talking_face.training.data import flatten_frames, frame_inputs
from talking_face.training.figures import frame_grid
from talking_face.training.loop import run_task, seed_everything, unwrap


def split_real_fake(outputs: list[ScaleOutput]) -> tuple[list[ScaleOutput], list[ScaleOutput]]:
    """Per-scale outputs of a [real; fake] batch -> (real outputs, fake outputs)."""
    halves = ([], [])
    for scale in outputs:
        parts = [value.chunk(2) for value in (scale.patch, scale.cam_logit, scale.attention)]
        features = [feature.chunk(2) for feature in scale.features]
        for half in (0, 1):
            halves[half].append(
                ScaleOutput(parts[0][half], parts[1][half], [f[half] for f in features], parts[2][half])
            )
    return halves


class GANTask:
    def __init__(self, config: dict):
        self.models = model_config(config["preset"], config.get("variant"), config.get("overrides"))
        predictor = motion_predictor(self.models)
        if config.get("predictor_state"):
            predictor.load_state_dict(config["predictor_state"])
        self.modules = {
            "generator": MANGenerator(self.models.generator),
            "predictor": predictor,
            "discriminator": MultiScaleDiscriminator(self.models.discriminator),
        }
        betas, lr = tuple(config["betas"]), config["lr"]
        generator_params = list(self.modules["generator"].parameters()) + list(predictor.parameters())
        self.optimizers = {
            "generator": torch.optim.Adam(generator_params, lr=lr, betas=betas),
            "discriminator": torch.optim.Adam(self.modules["discriminator"].parameters(), lr=lr, betas=betas),
        }
        self.weights = config["loss_weights"]
        self.mode = config["adversarial"]
        self.predictor_learns_from_generator = bool(config.get("predictor_learns_from_generator", False))
        self.perceptual = losses.PerceptualLoss(config.get("vgg_weights_path"))
        # Frozen and outside `modules`: neither trained, checkpointed nor wrapped for DDP.
        self.expert = load_expert(config["sync_expert_state"]).requires_grad_(False) if config.get("sync_expert_state") else None
        self._last = None

    def rollout_contexts(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The previous-frames input of every frame of the batch's sequences, [B*L, 3*C, S, S] sequence-major.

        The frames are generated one after the other without gradients, then `step` regenerates them with
        gradients in one batched pass: DDP requires one forward per backward."""
        generator, predictor = unwrap(self.modules["generator"]), unwrap(self.modules["predictor"])
        context = batch["previous"]
        contexts = [context]
        with torch.no_grad():
            for k in range(batch["target"].shape[1] - 1):
                frame = frame_inputs(batch, k)
                motion = motion_for_generator(predictor(context, frame["mel"]), self.models.generator.image_size)
                context = next_context(context, generator(generator_conditioning(frame, motion)).image)
                contexts.append(context)
        return torch.stack(contexts, 1).flatten(0, 1)

    def step(self, sequences: dict[str, torch.Tensor], autocast) -> dict[str, float]:
        generator, predictor, discriminator = (self.modules[n] for n in ("generator", "predictor", "discriminator"))
        kind, size = self.models.generator.man.motion, self.models.generator.image_size
        weights = self.weights
        with autocast:
            batch = {**flatten_frames(sequences), "previous": self.rollout_contexts(sequences)}
            motion = predictor(batch["previous"], batch["mel"])
            # The paper trains the predictor jointly; it does not say whether the generator's losses reach it.
            # By default only its own MSE does: shaped by the generator, the motion map relays the previous
            # frames' appearance (artifacts included) into the next frame and generation drifts.
            seen_motion = motion if self.predictor_learns_from_generator else motion.detach()
            output = generator(generator_conditioning(batch, motion_for_generator(seen_motion, size)))
            fake = output.image

            # One discriminator pass over real and fake together: DDP expects one forward per backward.
            both = discriminator(torch.cat([batch["target"], fake.detach()]), batch["source"].repeat(2, 1, 1, 1))
            d_real, d_fake = split_real_fake(both)
            d_adversarial = losses.discriminator_adversarial_loss(d_real, d_fake, self.mode)
            d_cam = losses.cam_loss_discriminator(d_real, d_fake)
            d_loss = d_adversarial + weights["cam"] * d_cam
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()

        with autocast:
            g_fake = discriminator(fake, batch["source"])
            terms = {
                "adversarial": losses.generator_adversarial_loss(g_fake, self.mode),
                "cam": losses.cam_loss_generator(g_fake),
                "feature_matching": losses.feature_matching_loss(d_real, g_fake),
                "reconstruction": losses.reconstruction_loss(fake, batch["target"], weights["mouth"]),
                "blinks": losses.region_loss(fake, batch["target"], batch["eyes"]),
                "predictor": losses.predictor_loss(motion, motion_target(batch, kind)),
                "perceptual": self.perceptual(fake, batch["target"]),
            }
            if self.models.generator.output == "composite":
                terms["mask_sparsity"] = losses.mask_sparsity_loss(output.mask, batch["parts"])
                terms["mask_smoothness"] = losses.mask_smoothness_loss(output.mask)
                terms["motion_magnitude"] = losses.motion_magnitude_loss(output.motion)
                terms["mouth_motion"] = losses.mouth_motion_loss(output.motion, batch["mouth_points"], batch["mouth_shifts"])
                # The painted pixels learn the frame directly: behind a nearly closed mask they would get
                # almost no gradient, stay poor, and the mask would never open (eyelids, inside the mouth).
                terms["painted"] = losses.reconstruction_loss(output.painted, batch["target"], weights["mouth"])
            terms["mouth_interior"] = losses.region_loss(fake, batch["target"], batch["mouth_inside"])
            sync_figures = {}
            if self.expert is not None and sequences["expert_mel"].shape[1] > 0:
                terms["sync"], sync_figures = self.expert_sync(sequences, fake)
            g_loss = sum(weights.get(name, 0.0) * value for name, value in terms.items())
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        self._last = (batch, output)
        metrics = {f"g_{name}": value.item() for name, value in terms.items()}
        metrics.update(g_total=g_loss.item(), d_adversarial=d_adversarial.item(), d_cam=d_cam.item(), **sync_figures)
        for block, rho in rho_table(generator).items():
            metrics.update({f"rho/{block}/{source}": weight for source, weight in rho.items()})
        return metrics

    def expert_sync(self, sequences: dict[str, torch.Tensor], fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The expert's sync loss on every window of the generated sequences, and its figures: the mean cosine
        similarity of the generated and of the real windows to their speech."""
        expert = self.expert.to(fake.device)
        batch, length = sequences["target"].shape[:2]
        size = expert.config.frames
        starts = range(length - size + 1)
        generated = fake.view(batch, length, *fake.shape[1:])
        windows = torch.cat([generated[:, s : s + size] for s in starts])  # window-major, as the mel below
        mel = sequences["expert_mel"].transpose(0, 1).flatten(0, 1)
        loss, similarity = losses.expert_sync_loss(expert, windows, mel)
        with torch.no_grad():
            real = torch.cat([sequences["target"][:, s : s + size] for s in starts])
            _, real_similarity = losses.expert_sync_loss(expert, real, mel)
        return loss, {"expert_cos_generated": similarity.item(), "expert_cos_real": real_similarity.item()}

    def snapshot(self, sequences, logger, step: int) -> None:
        batch, output = self._last
        composite = self.models.generator.output == "composite"
        logger.image(frame_grid(batch["source"], batch["target"], output, composite), f"train/frames_{step:06d}.png")


def gan_loop(config: dict) -> None:
    """Ray Train per-worker entry point."""
    seed_everything(config["seed"])
    run_task(GANTask(config), config)
