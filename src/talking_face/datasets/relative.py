"""Paths stored relative to the project, handed to nodes absolute: datasets that survive a move.

A manifest or clip list that records `/home/a/talking-face/data/01_raw/...` is stale in any other clone,
so every dataset that holds file paths is wrapped in `RelativePathsDataset`: on save, each path under the
project root, or beside it (`../shared/data/grid/...`), becomes relative to the root (POSIX separators);
on load, each relative path is joined to the current project root. Other paths (a corpus mounted at
/data/grid) stay absolute: such a mount must be at the same place on every machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from kedro.io import AbstractDataset, DatasetError


def portable_path(path: str, root: str | os.PathLike) -> str:
    """`path` relative to `root` (POSIX) when it lies under `root` or beside it (under its parent folder, as
    ../shared/data does), else unchanged."""
    if not path or not os.path.isabs(path):
        return path
    # As written first, then with links resolved (the working directory is always the resolved one).
    for inside, top in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))), (Path(path).resolve(), Path(root).resolve())):
        if inside.is_relative_to(top.parent) and top.parent != top:
            return Path(os.path.relpath(inside, top)).as_posix()
    return path


def local_path(path: str, root: str | os.PathLike) -> str:
    """`path` made absolute against `root` when it is relative (as stored by portable_path)."""
    if not path or os.path.isabs(path):
        return path
    return os.path.normpath(Path(root).resolve() / path)


def convert_paths(data: Any, fields: list[str], convert: Callable[[str], str]) -> Any:
    """`convert` applied to the paths in `data`: the `fields` columns of a DataFrame, the `fields` keys of
    a list of dicts, or the items of a list of strings (no fields)."""
    if isinstance(data, pd.DataFrame):
        present = [field for field in fields if field in data.columns]
        return data.assign(**{field: data[field].map(lambda value: convert(str(value))) for field in present})
    if isinstance(data, list) and not fields:
        return [convert(str(item)) for item in data]
    if isinstance(data, list):
        return [{**row, **{key: convert(str(row[key])) for key in fields if key in row}} for row in data]
    raise DatasetError(f"RelativePathsDataset holds a DataFrame or a list, got {type(data).__name__}")


class RelativePathsDataset(AbstractDataset[Any, Any]):
    """Wraps another dataset (`dataset`: its catalog entry); `fields` name the path columns or keys (none:
    the data is a list of paths). `root`: the project root, by default the working directory, as for
    Kedro's own relative file paths."""

    def __init__(self, dataset: dict[str, Any], fields: list[str] | None = None, root: str | None = None):
        self._dataset = AbstractDataset.from_config("wrapped", dict(dataset))
        self._fields = list(fields or [])
        self._root = root

    def _project_root(self) -> Path:
        return Path(self._root) if self._root else Path.cwd()

    def load(self) -> Any:
        root = self._project_root()
        return convert_paths(self._dataset.load(), self._fields, lambda path: local_path(path, root))

    def save(self, data: Any) -> None:
        root = self._project_root()
        self._dataset.save(convert_paths(data, self._fields, lambda path: portable_path(path, root)))

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe(), "fields": self._fields}
