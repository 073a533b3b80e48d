"""Kedro datasets for per-clip feature files: compressed npz archives, written atomically.

`NpzDataset` is one file (a dict of arrays), meant as the `dataset` of a PartitionedDataset.
`NpzKeysDataset` reads a few small keys from every npz of a folder as a table, without touching the big
arrays, e.g. to see which clips are up to date before extracting.
"""

from __future__ import annotations

import os
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_protocol_and_path


def _local_path(filepath: str, kind: str) -> PurePosixPath:
    protocol, path = get_protocol_and_path(filepath)
    if protocol != "file":
        raise DatasetError(f"{filepath}: {kind} reads and writes local files only, not '{protocol}://'")
    return PurePosixPath(path)


def write_npz(
    path: str | os.PathLike, arrays: dict[str, Any], compresslevel: int = 1, stored_keys: tuple[str, ...] = ()
) -> None:
    """Writes `arrays` as a deflate-compressed npz via a temp file in the same folder and os.replace.

    `stored_keys` are written uncompressed: float flow fields, for one, shrink by ~10% for most of the
    write time. The temp name does not end in .npz, so a killed run leaves nothing a reader would list.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are private (0600); open(.., "xb") keeps the usual umask permissions.
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    file = open(temp, "xb")
    try:
        with file:
            with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
                for key, value in arrays.items():
                    entry = _stored_entry(f"{key}.npy") if key in stored_keys else f"{key}.npy"
                    with archive.open(entry, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _stored_entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_STORED
    return entry


class NpzDataset(AbstractDataset[dict, dict]):
    """A dict of numpy arrays in one compressed npz file.

    Saving writes a temp file next to the target and renames it, so a killed run never leaves a
    half-written file. `load_args: {keys: [...]}` loads only those keys (missing ones are skipped).

    .. code-block:: yaml

        feature_clips:
          type: partitions.PartitionedDataset
          path: data/04_feature/clips
          dataset: talking_face.datasets.npz.NpzDataset
          filename_suffix: .npz
    """

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        """`save_args`: `compresslevel` 0..9 (default 1: most of the gain, fast) and `stored_keys`, keys
        written uncompressed (see write_npz)."""
        self._filepath = _local_path(filepath, "NpzDataset")
        self._keys = (load_args or {}).get("keys")
        self._compresslevel = int((save_args or {}).get("compresslevel", 1))
        self._stored_keys = tuple((save_args or {}).get("stored_keys", ()))
        self.metadata = metadata

    def load(self) -> dict[str, np.ndarray]:
        try:
            with np.load(self._filepath, allow_pickle=False) as archive:
                keys = archive.files if self._keys is None else [key for key in self._keys if key in archive.files]
                return {key: archive[key] for key in keys}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise DatasetError(f"{self._filepath}: not a readable npz file ({error})") from None

    def save(self, data: dict) -> None:
        if not isinstance(data, dict) or not data:
            raise DatasetError(f"{self._filepath}: NpzDataset saves a non-empty dict of arrays, got {type(data).__name__}")
        write_npz(self._filepath, data, self._compresslevel, self._stored_keys)

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "keys": self._keys,
            "compresslevel": self._compresslevel,
            "stored_keys": list(self._stored_keys),
        }


class NpzKeysDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only table of a few scalar keys from every npz in a folder: one row per file.

    Columns are `id` (the file's path under `path` without the suffix, as a PartitionedDataset names
    partitions) and one per key, holding the scalar as a Python value or None where the file lacks it. A
    missing or empty folder gives an empty table, so a first run needs no special case.

    .. code-block:: yaml

        feature_index:
          type: talking_face.datasets.npz.NpzKeysDataset
          path: data/04_feature/clips
          keys: [params_hash, content_hash]
    """

    def __init__(self, path: str, keys: list[str], filename_suffix: str = ".npz", metadata: dict[str, Any] | None = None):
        self._path = _local_path(path, "NpzKeysDataset")
        self._keys = list(keys)
        self._suffix = filename_suffix
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        folder = Path(self._path)
        rows = []
        for file in sorted(folder.rglob(f"*{self._suffix}")) if folder.is_dir() else []:
            try:
                with np.load(file, allow_pickle=False) as archive:
                    row = {key: archive[key].item() if key in archive.files else None for key in self._keys}
            except (OSError, ValueError, zipfile.BadZipFile):
                row = dict.fromkeys(self._keys)  # an unreadable file reads as unknown, so it gets rewritten
            rows.append({"id": file.relative_to(folder).as_posix()[: -len(self._suffix)], **row})
        return pd.DataFrame(rows, columns=["id", *self._keys])

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._path}: NpzKeysDataset is read-only; save the files through NpzDataset")

    def _exists(self) -> bool:
        return Path(self._path).is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "keys": self._keys, "filename_suffix": self._suffix}
