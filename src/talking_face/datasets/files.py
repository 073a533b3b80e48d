"""Kedro datasets for what training hands between nodes: file paths and torch objects."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io import AbstractDataset, DatasetError

from talking_face.atomic import torch_save


class FilePathsDataset(AbstractDataset[None, dict[str, str]]):
    """Read-only: {partition id: absolute path} of the files under a folder, so that training workers read
    the files themselves instead of receiving one large in-memory object."""

    def __init__(self, path: str, suffix: str = ""):
        self._path = Path(path)
        self._suffix = suffix

    def load(self) -> dict[str, str]:
        if not self._path.is_dir():
            return {}
        files = sorted(self._path.rglob(f"*{self._suffix}"))
        return {
            str(PurePosixPath(file.relative_to(self._path).as_posix()))[: -len(self._suffix) or None]: str(file.resolve())
            for file in files
            if file.is_file() and not file.name.startswith(".")
        }

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._path}: FilePathsDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "suffix": self._suffix}


class TorchDataset(AbstractDataset[Any, Any]):
    """Any torch-serialisable object (state dicts, model bundles), written atomically (temp file + rename)."""

    def __init__(self, filepath: str):
        self._filepath = Path(filepath)

    def load(self) -> Any:
        if not self._filepath.is_file():
            raise DatasetError(f"{self._filepath}: not found (run the pipeline that writes it first)")
        return torch.load(self._filepath, map_location="cpu", weights_only=False)

    def save(self, data: Any) -> None:
        torch_save(data, self._filepath)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
