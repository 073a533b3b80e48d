"""Small real inputs for the evaluation and registry tests: sample-generator clips through the real feature
extraction at a 32-pixel crop, and untrained model bundles of that size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from talking_face.features.extract import extract_clip, feature_params_hash, resolve_params
from talking_face.media.video import write_video
from talking_face.models import model_config
from talking_face.models.sync_expert import SyncExpert, expert_state
from talking_face.sample.dataset import make_clip, speaker_variants
from talking_face.conditioning.bundle import TalkingFaceModel

SIZE = 32
EXTRACT = resolve_params({"crop_size": SIZE})


def make_feature_clips(folder: Path, clips: list[tuple[str, str]], seconds: float = 1.0) -> pd.DataFrame:
    """Writes `folder/<clip_id>.npz` for each (clip_id, split), one sample speaker each, as the features
    pipeline does (header keys included); returns their feature-summary rows (clip_id, speaker, split)."""
    folder.mkdir(parents=True, exist_ok=True)
    speakers = speaker_variants(len(clips), seed=11)
    rows = []
    for index, (clip_id, split) in enumerate(clips):
        frames, audio = make_clip(speakers[index], seed=20 + index, seconds=seconds)
        video = write_video(folder / f"{clip_id}.mp4", frames, audio=audio)
        features = extract_clip(video, video, EXTRACT)
        header = {"content_hash": f"sample-{clip_id}", "params_hash": feature_params_hash(EXTRACT)}
        np.savez(folder / f"{clip_id}.npz", **features, **header)
        video.unlink()
        rows.append({"clip_id": clip_id, "speaker": f"spk{index:02d}", "split": split})
    return pd.DataFrame(rows)


def tiny_bundle(seed: int) -> dict:
    """The state of an untrained 32-pixel model; different seeds give different weights."""
    torch.manual_seed(seed)
    config = model_config("cpu", overrides={"image_size": SIZE, "generator": {"base_channels": 8}})
    return TalkingFaceModel.build(config, EXTRACT).state()


def tiny_expert(seed: int = 0) -> dict:
    """The file content of an untrained lip-sync expert (models.sync_expert.expert_state)."""
    torch.manual_seed(seed)
    return expert_state(SyncExpert())
