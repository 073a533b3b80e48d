"""The data version a model was trained on: what the MLflow run and the registry record.

The version is a digest of the `features` stage's outputs as dvc.lock records them (DVC's md5 of the
feature files and the feature summary), used when dvc.lock matches the data on disk. Otherwise (no DVC,
or data changed by a plain `kedro run` since the last `dvc repro` / `dvc commit`) it is a digest of what
each feature file says it holds: its video's content hash and its extraction-parameter hash. The prefix
says which: "dvc:<hex>" or "features:<hex>".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import yaml

from talking_face.features.schema import file_identity

logger = logging.getLogger(__name__)

HASH_LENGTH = 16
FEATURES_STAGE = "features"
FEATURE_DIR = "data/04_feature/clips"


def data_version(project_root: str | os.PathLike, stage: str = FEATURES_STAGE, feature_dir: str = FEATURE_DIR) -> str:
    """"dvc:<hex>" from dvc.lock when it describes the feature data on disk, else "features:<hex>"."""
    root = Path(project_root)
    entries = locked_outputs(root / "dvc.lock", stage)
    if entries and lock_is_current(root, stage):
        return "dvc:" + _digest(json.dumps(entries, sort_keys=True))
    return "features:" + feature_headers_digest(root / feature_dir)


def locked_outputs(lock_path: Path, stage: str) -> list[dict]:
    """[{"path", "md5"}] of `stage`'s outputs in dvc.lock, sorted by path ([] without a lock or stage)."""
    if not lock_path.is_file():
        return []
    lock = yaml.safe_load(lock_path.read_text()) or {}
    outs = (lock.get("stages") or {}).get(stage, {}).get("outs") or []
    return sorted(({"path": out["path"], "md5": out.get("md5", "")} for out in outs), key=lambda out: out["path"])


def lock_is_current(root: Path, stage: str) -> bool:
    """True when the stage's outputs on disk are the ones dvc.lock records.

    Inside `dvc repro` (DVC_STAGE set) DVC has just brought every upstream stage up to date and holds the
    repository lock, so the lock file is trusted; otherwise DVC compares the files (its hash cache makes
    unchanged files cheap).
    """
    if os.environ.get("DVC_STAGE") and Path(os.environ.get("DVC_ROOT", "")).resolve() == root.resolve():
        return True
    try:
        from dvc.repo import Repo

        with Repo(str(root)) as repo:
            # An absolute dvc.yaml:stage target: DVC resolves bare names against the working directory.
            status = repo.status(targets=[f"{root.resolve() / 'dvc.yaml'}:{stage}"])
    except Exception as error:  # not a DVC repository, a lock held elsewhere, a broken dvc.yaml
        logger.info("data version: dvc status of %s unavailable (%s); using the feature headers", stage, error)
        return False
    # Keyed by the stage's address as seen from the working directory: one target, so look at every entry.
    changes = [change for entry in status.values() for change in entry]
    return not any(isinstance(change, dict) and "changed outs" in change for change in changes)


def feature_headers_digest(feature_dir: Path) -> str:
    """Digest of every feature file's name and header keys (not its bytes: cheap on a large corpus)."""
    digest = hashlib.sha256()
    for path in sorted(feature_dir.glob("*.npz")):
        digest.update(json.dumps({"clip": path.stem, **file_identity(path)}, sort_keys=True).encode())
    return digest.hexdigest()[:HASH_LENGTH]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]
