"""The data version as a read-only Kedro dataset, so the register node gets the value the MLflow run is tagged with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from talking_face.versioning import data_version


class DataVersionDataset(AbstractDataset[None, str]):
    """Read-only: talking_face.versioning.data_version of the project at `project_root` (default: the
    working directory, the project root in a Kedro run)."""

    def __init__(self, project_root: str = "."):
        self._root = project_root

    def load(self) -> str:
        return data_version(Path(self._root).resolve())

    def save(self, data: None) -> None:
        raise DatasetError("DataVersionDataset is read-only: the version follows from the feature data")

    def _describe(self) -> dict[str, Any]:
        return {"project_root": self._root}
