"""Content fingerprints for the registry: what a model bundle is, and what data it came from.

Both are short hex digests of canonical content (never of file paths or timestamps), so the same model
trained on the same data fingerprints the same on any machine and any run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import torch

HASH_LENGTH = 16
MANIFEST_IDENTITY = ("clip_id", "split", "content_hash")  # the manifest columns that say which data is which


def bundle_hash(state: dict) -> str:
    """Fingerprint of a model bundle state (`TalkingFaceModel.state()`): its configuration, feature
    parameters and every weight's name, dtype, shape and bytes. Equal bundles hash equal whatever file
    they were loaded from; any changed weight changes it."""
    digest = hashlib.sha256()
    header = {key: value for key, value in state.items() if key not in ("generator", "predictor")}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for network in ("generator", "predictor"):
        for name, tensor in sorted(state[network].items()):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{network}.{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:HASH_LENGTH]


def data_version_components(manifest: pd.DataFrame, training_feature_paths: list[str]) -> dict[str, str]:
    """The parts of the data version, each a digest: "manifest" (every accepted clip's id, split and video
    content hash) and "training_clips" (the feature files the model was trained on, by name). A later
    source of truth (e.g. the dvc.lock hash) is one more entry here."""
    identity = manifest.loc[:, list(MANIFEST_IDENTITY)].astype(str).sort_values("clip_id")
    training = sorted(Path(path).name for path in training_feature_paths)
    return {
        "manifest": _digest(identity.to_csv(index=False)),
        "training_clips": _digest("\n".join(training)),
    }


def data_version(manifest: pd.DataFrame, training_feature_paths: list[str]) -> str:
    """One digest of all `data_version_components`: equal exactly when every component is equal."""
    components = data_version_components(manifest, training_feature_paths)
    return _digest(json.dumps(components, sort_keys=True))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]
