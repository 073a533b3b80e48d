"""The lip-sync expert: SyncNet (Chung and Zisserman 2016) as Wav2Lip's expert discriminator trains it.

A video branch embeds a window of consecutive lower-face crops, an audio branch the log-mel of the same
moment; the two embeddings' cosine similarity says whether the lips move with that speech. It judges
talking where frame-matching metrics cannot (a still mouth is not "close" to speech), and it is ours: its
distances are not comparable with published SyncNet figures.

Inputs (`lower_face`, `conditioning.sync_inputs.expert_mel`): `frames` consecutive video frames of the lower
half of the face crop, grey, [B, frames, face_height, face_width], each window normalised to zero mean and
unit variance so a face's brightness and skin tone carry nothing; the log-mel steps of the same frames,
[B, n_mels, frames * mel_steps_per_frame], normalised over the clip.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SyncExpertConfig:
    frames: int = 5  # video frames per window (0.2 s at 25 fps), as SyncNet
    face_height: int = 32  # the lower half of the face crop is resized to this ...
    face_width: int = 64  # ... by this
    n_mels: int = 80
    mel_steps_per_frame: int = 4  # 10 ms mel steps per 40 ms video frame
    channels: tuple[int, ...] = (32, 64, 128, 128)
    embedding: int = 128

    def __post_init__(self) -> None:
        self.channels = tuple(int(value) for value in self.channels)

    @property
    def mel_steps(self) -> int:
        return self.frames * self.mel_steps_per_frame

    def to_dict(self) -> dict:
        return asdict(self)


def video_encoder(frames: int, channels: tuple[int, ...], embedding: int) -> nn.Sequential:
    """Stride-2 conv blocks over the stacked frames, global average pooling, a linear map to the embedding."""
    layers, previous = [], frames
    for width in channels:
        layers += [nn.Conv2d(previous, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        previous = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, embedding))


def audio_encoder(n_mels: int, channels: tuple[int, ...], embedding: int) -> nn.Sequential:
    """Conv1d blocks over time with the mel bands as channels (a window is only 20 steps long), the first
    keeping the time resolution, then pooling and a linear map to the embedding."""
    layers, previous = [], n_mels
    for index, width in enumerate(channels):
        layers += [nn.Conv1d(previous, width, 3, 1 if index == 0 else 2, 1, bias=False), nn.BatchNorm1d(width),
                   nn.ReLU(True)]  # fmt: skip
        previous = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(previous, embedding))


class SyncExpert(nn.Module):
    def __init__(self, config: SyncExpertConfig | dict | None = None):
        super().__init__()
        config = config if isinstance(config, SyncExpertConfig) else SyncExpertConfig(**(config or {}))
        self.config = config
        self.video = video_encoder(config.frames, config.channels, config.embedding)
        self.audio = audio_encoder(config.n_mels, config.channels, config.embedding)
        self.logit_scale = nn.Parameter(torch.tensor(2.3))  # exp(2.3) = 10: cosine similarities -> logits

    def embed_video(self, faces: torch.Tensor) -> torch.Tensor:
        """[B, frames, H, W] -> unit vectors [B, embedding]."""
        return F.normalize(self.video(faces), dim=-1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, mel_steps] -> unit vectors [B, embedding]."""
        return F.normalize(self.audio(mel), dim=-1)

    def forward(self, faces: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Training logits [B, C + B - 1] of windows [B, frames, H, W] against candidate speeches
        [B, C, n_mels, mel_steps] (column 0 each window's own, then its shifted ones): scaled cosine
        similarities to its candidates, then to the other windows' own speech (through DDP, as a forward)."""
        batch, candidates = mel.shape[:2]
        video = self.embed_video(faces)
        speech = self.embed_audio(mel.flatten(0, 1)).view(batch, candidates, -1)
        own = torch.einsum("be,bce->bc", video, speech)
        others = video @ speech[:, 0].T  # [B, B]: window i against window j's speech
        off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=faces.device)
        logits = torch.cat([own, others[off_diagonal].view(batch, batch - 1)], dim=1)
        return logits * self.logit_scale.exp().clamp(max=100.0)


def lower_face(frames: torch.Tensor, config: SyncExpertConfig) -> torch.Tensor:
    """Face crops [..., 3, S, S] in [0, 1] -> the expert's grey lower-face frames [..., H, W], each crop
    normalised to zero mean and unit variance (differentiable, so a generator can be scored by it)."""
    lead, size = frames.shape[:-3], frames.shape[-1]
    images = frames.reshape(-1, *frames.shape[-3:])[:, :, size // 2 :, :]
    grey = (images * images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    grey = F.interpolate(grey, size=(config.face_height, config.face_width), mode="bilinear", align_corners=False,
                         antialias=True)  # fmt: skip
    mean = grey.mean(dim=(-2, -1), keepdim=True)
    std = grey.std(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
    return ((grey - mean) / std).reshape(*lead, config.face_height, config.face_width)


def expert_state(expert: SyncExpert) -> dict:
    """What a file holds: the configuration, the weights and their version (a digest of the weights, so two
    experts' scores compare only when the versions match)."""
    weights = {key: value.detach().cpu() for key, value in expert.state_dict().items()}
    digest = hashlib.sha256()
    for key in sorted(weights):
        digest.update(key.encode() + weights[key].numpy().tobytes())
    return {"config": expert.config.to_dict(), "weights": weights, "version": digest.hexdigest()[:12]}


def load_expert(state: dict) -> SyncExpert:
    """The expert of an `expert_state` dict, in eval mode."""
    expert = SyncExpert(SyncExpertConfig(**state["config"]))
    expert.load_state_dict(state["weights"])
    expert.version = state["version"]
    return expert.eval()
