"""Training the lip-sync expert (`models.sync_expert`) on the run's training clips, as Wav2Lip trains its
expert: each window of lower-face frames against its own speech (the positive), the same clip's speech
shifted by 2 to `max_shift` frames (negatives that differ only in timing) and the other windows' speech
of the batch (other words and voices), with a softmax over the cosine similarities (InfoNCE).

Every clip's grey lower faces and mel are read once per worker (tens of MB for hundreds of clips);
windows are drawn by a DistributedSampler, so workers split them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

import ray.train
from ray.train.torch import prepare_data_loader

from talking_face.conditioning.sync_inputs import expert_faces, expert_mel, face_windows, mel_windows, window_starts
from talking_face.models.sync_expert import SyncExpert, SyncExpertConfig
from talking_face.training.figures import tile
from talking_face.training.loop import run_task, seed_everything


class SyncWindowDataset(Dataset):
    """Item: one window of a clip, its speech and `negatives` shifted speeches of the same clip."""

    def __init__(self, paths: list[str], config: SyncExpertConfig, negatives: int, max_shift: int, seed: int):
        self.config, self.negatives, self.max_shift, self.seed = config, negatives, max_shift, seed
        self.faces, self.mels, self.index = [], [], []
        for path in paths:
            with np.load(path) as archive:
                frames, audio, fps = archive["frames"], archive["audio"], float(archive["fps"])
            starts = window_starts(len(frames), config)
            if len(starts) < 4:  # too short to hold a shifted negative
                continue
            rate = int(round(len(audio) * fps / len(frames)))
            self.faces.append(expert_faces(frames, config).astype(np.float16))
            self.mels.append(expert_mel(audio, len(frames), rate, fps, config))
            self.index.extend((len(self.faces) - 1, int(start)) for start in starts)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        clip, start = self.index[item]
        faces, mel = self.faces[clip], self.mels[clip]
        last = len(faces) - self.config.frames
        shifts = [s for s in range(-self.max_shift, self.max_shift + 1) if abs(s) >= 2 and 0 <= start + s <= last]
        rng = np.random.default_rng((self.seed, self.epoch, item))
        shifted = rng.choice(shifts, self.negatives, replace=len(shifts) < self.negatives) + start
        starts = np.concatenate([[start], shifted])
        return {
            "faces": torch.from_numpy(face_windows(faces, np.array([start]), self.config)[0].astype(np.float32)),
            "mel": torch.from_numpy(mel_windows(mel, starts, self.config)),  # [1 + negatives, n_mels, steps]
        }


class SyncExpertTask:
    def __init__(self, config: dict):
        self.modules = {"expert": SyncExpert(SyncExpertConfig(**config["expert"]))}
        self.optimizers = {"expert": torch.optim.Adam(self.modules["expert"].parameters(), lr=config["lr"])}
        self._last = None

    def step(self, batch: dict[str, torch.Tensor], autocast) -> dict[str, float]:
        expert = self.modules["expert"]
        expert.train()
        with autocast:
            logits = expert(batch["faces"], batch["mel"])
            loss = F.cross_entropy(logits.float(), torch.zeros(len(logits), dtype=torch.long, device=logits.device))
        self.optimizers["expert"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["expert"].step()
        negatives = batch["mel"].shape[1] - 1
        own = logits[:, : 1 + negatives].detach()
        self._last = batch
        return {
            "loss": loss.item(),
            "accuracy": (logits.argmax(1) == 0).float().mean().item(),  # its speech among all candidates
            "offset_accuracy": (own.argmax(1) == 0).float().mean().item(),  # its timing among its own shifts
        }

    def snapshot(self, batch, logger, step: int) -> None:
        """The expert's inputs: each row one window of grey lower faces."""
        faces = batch["faces"][:4].detach().float()
        low, high = faces.amin(dim=(1, 2, 3), keepdim=True), faces.amax(dim=(1, 2, 3), keepdim=True)
        grey = ((faces - low) / (high - low + 1e-6) * 255).byte().cpu().numpy()
        rows = [np.repeat(window[..., None], 3, -1) for window in grey]
        logger.image(tile(rows, grey.shape[1]), f"sync_expert/inputs_{step:06d}.png")


def make_window_loader(config: dict):
    dataset = SyncWindowDataset(
        config["feature_paths"], SyncExpertConfig(**config["expert"]), int(config["negatives"]),
        int(config["max_shift"]), int(config["seed"]),
    )  # fmt: skip
    if len(dataset) < config["batch_size"]:
        raise ValueError(f"{len(dataset)} windows of training video, fewer than a batch of {config['batch_size']}")
    context = ray.train.get_context()
    sampler = DistributedSampler(
        dataset, num_replicas=context.get_world_size(), rank=context.get_world_rank(), shuffle=True,
        seed=int(config["seed"]), drop_last=True,
    )  # fmt: skip
    loader = DataLoader(dataset, batch_size=config["batch_size"], sampler=sampler, drop_last=True)
    return prepare_data_loader(loader, add_dist_sampler=False), EpochSampler(sampler, dataset)


class EpochSampler:
    """Sets the epoch on the sampler and the dataset (which draws its shifted negatives per epoch)."""

    def __init__(self, sampler: DistributedSampler, dataset: SyncWindowDataset):
        self.sampler, self.dataset = sampler, dataset

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.dataset.epoch = epoch


def sync_expert_loop(config: dict) -> None:
    """Ray Train per-worker entry point."""
    seed_everything(config["seed"])
    run_task(SyncExpertTask(config), config, make_window_loader)
