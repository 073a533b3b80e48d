"""Content fingerprint for the registry: what a model bundle is (the data it came from is
talking_face.versioning.data_version).

A short hex digest of canonical content (never of file paths or timestamps), so the same model
fingerprints the same on any machine and any run.
"""

from __future__ import annotations

import hashlib
import json

import torch

HASH_LENGTH = 16


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
