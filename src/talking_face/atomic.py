"""Atomic writes: a temp file in the target folder renamed into place, so no reader sees half a file."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def publish(tmp: str | Path, path: str | Path) -> None:
    """Renames a finished temp file onto `path` with the permissions a plain open() would give it
    (mkstemp makes private 0600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yields a temp path next to `path`; renames it onto `path` on success, deletes it on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".part-", suffix=suffix or path.suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(tmp)
        publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def torch_save(obj: Any, path: str | Path) -> Path:
    import torch  # here, not at the top: media code uses this module and must not pull in torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)
