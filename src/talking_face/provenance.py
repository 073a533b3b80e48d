"""What a run was made with: the git commit of the code and the Python environment.

Recorded on every MLflow run (talking_face.hooks) and in the model card, so a model leads back to the code
(`git checkout <commit>`) and to the packages (`requirements.lock`, and the exact list that was installed).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

LOCK_FILE = "requirements.lock"
HASH_LENGTH = 16


def git_commit(root: str | os.PathLike) -> str | None:
    """The commit checked out in `root` (None outside a git repository or without git)."""
    return _git(root, "rev-parse", "HEAD")


def git_dirty(root: str | os.PathLike) -> bool | None:
    """True when tracked files differ from the commit (None outside a git repository)."""
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def installed_packages() -> list[str]:
    """`name==version` of every installed distribution, sorted: what `pip freeze` lists."""
    found = {(dist.metadata["Name"] or "").lower(): dist.version for dist in importlib.metadata.distributions()}
    return [f"{name}=={version}" for name, version in sorted(found.items()) if name]


def environment_tags(root: str | os.PathLike) -> dict[str, str]:
    """MLflow tags: the commit (under MLflow's own tag name, shown in its UI), whether the tree was dirty,
    the Python version, the digest of the installed packages and of the lock file."""
    root = Path(root)
    tags = {"environment.python": platform.python_version(),
            "environment.packages_sha256": _digest("\n".join(installed_packages()))}
    lock = root / LOCK_FILE
    if lock.is_file():
        tags["environment.lock_sha256"] = _digest(lock.read_text())
    commit, dirty = git_commit(root), git_dirty(root)
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git_dirty"] = str(dirty).lower()
    return tags


def _git(root: str | os.PathLike, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]
