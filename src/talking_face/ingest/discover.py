"""Finds clips under a raw folder and names their speaker from the corpus layout.

Layouts: GRID (`s<N>/.../<clip>.mpg`, or a flat folder of GRID clips with a speaker map), CREMA-D
(`<actor>_<sentence>_<emotion>_<level>.flv`, with a `.wav` of the same name anywhere under the root),
LRS/VoxCeleb (`<speaker>/<video>/<n>.mp4`) and generic `<speaker>/<clip>.<ext>`; a same-stem `.wav`
beside a video is its sidecar audio and is preferred over the embedded track.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from talking_face.ingest.records import ClipCandidate, IngestError, Rejection, make_clip_id

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".flv", ".webm"})
GRID_SUFFIXES = frozenset({".mpg", ".mpeg"})
SIDECAR_SUFFIX = ".wav"
SPEAKER_MAP_NAME = "speakers.csv"
CREMA_D_NAME = re.compile(r"^(?P<actor>\d{4})_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}$")
GRID_SPEAKER_DIR = re.compile(r"^s\d+$")


def read_speaker_map(path: str | os.PathLike) -> dict[str, str]:
    """Reads a CSV with columns clip (file stem or root-relative path without suffix) and speaker."""
    table = pd.read_csv(path, dtype=str)
    if not {"clip", "speaker"} <= set(table.columns):
        raise IngestError(f"{path}: a speaker map needs the columns clip and speaker")
    return dict(zip(table["clip"].str.strip(), table["speaker"].str.strip()))


def discover_clips(
    root: str | os.PathLike,
    speaker_map: str | os.PathLike | dict[str, str] | None = None,
    corpus: str | None = None,
) -> tuple[list[ClipCandidate], list[Rejection]]:
    """Every video under `root` (hidden files skipped) as a candidate, and the files that cannot be one.

    Without an explicit `speaker_map`, each video uses the `speakers.csv` of its own folder or the nearest
    folder above it (up to `root`), with clip names relative to that map's folder. `corpus` (default: the
    folder's name) is recorded on every candidate.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise IngestError(f"{root}: the raw folder does not exist")
    corpus = corpus or root.name
    files = _visible_files(root)
    if speaker_map is None:
        maps = {path.parent: read_speaker_map(path) for path in files if path.name == SPEAKER_MAP_NAME}
    else:
        maps = {root: speaker_map if isinstance(speaker_map, dict) else read_speaker_map(speaker_map)}
    sidecars = {path for path in files if path.suffix.lower() == SIDECAR_SUFFIX}
    sidecars_by_stem = defaultdict(list)
    for path in sorted(sidecars):
        sidecars_by_stem[path.stem].append(path)

    candidates, rejections, used_sidecars = [], [], set()
    for path in files:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        rel = path.relative_to(root)
        found = _layout(rel, _mapped_speaker(path, root, maps))
        if found is None:
            reason = "no speaker: the file sits directly in the raw folder and no speaker map lists it"
            rejections.append(Rejection(make_clip_id("unknown", path.stem), str(path), "discover", reason))
            continue
        layout, speaker, name = found
        sidecar = path.with_suffix(SIDECAR_SUFFIX)
        if sidecar not in sidecars and layout == "crema_d" and len(sidecars_by_stem[path.stem]) == 1:
            sidecar = sidecars_by_stem[path.stem][0]  # CREMA-D ships AudioWAV/ apart from VideoFlash/
        audio = sidecar if sidecar in sidecars else path
        used_sidecars.add(audio)
        candidates.append(ClipCandidate(make_clip_id(speaker, name), speaker, str(path), str(audio), layout, corpus))

    for path in sorted(sidecars - used_sidecars):
        reason = "audio-only file: no video with the same name"
        rejections.append(Rejection(make_clip_id(path.parent.name, path.stem), str(path), "discover", reason))
    return candidates, rejections


def _mapped_speaker(path: Path, root: Path, maps: dict[Path, dict[str, str]]) -> str | None:
    """The speaker that the nearest speaker map at or above the video's folder gives it, if any."""
    for folder in (path.parent, *path.parent.parents):
        if folder in maps:
            mapping = maps[folder]
            return mapping.get(path.stem) or mapping.get(path.relative_to(folder).with_suffix("").as_posix())
        if folder == root:
            return None
    return None


def _layout(rel: Path, mapped_speaker: str | None) -> tuple[str, str, str] | None:
    """(layout, speaker, clip name) for a root-relative video path, or None when no speaker can be named."""
    stem, folders = rel.stem, rel.parts[:-1]
    crema_d = CREMA_D_NAME.match(stem)
    if crema_d:
        return "crema_d", mapped_speaker or crema_d["actor"], stem
    if rel.suffix.lower() in GRID_SUFFIXES:
        grid_speaker = next((folder for folder in reversed(folders) if GRID_SPEAKER_DIR.match(folder)), None)
        if mapped_speaker or grid_speaker:
            return "grid", mapped_speaker or grid_speaker, stem
    if stem.isdigit() and len(folders) >= 2:
        return "lrs", mapped_speaker or folders[-2], f"{folders[-1]}_{stem}"
    if folders:
        return "generic", mapped_speaker or folders[-1], stem
    if mapped_speaker:
        return "generic", mapped_speaker, stem
    return None


def _visible_files(root: Path) -> list[Path]:
    """All files under root, symlinked folders followed, names starting with '.' skipped, sorted."""
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found.extend(Path(folder) / name for name in names if not name.startswith("."))
    return sorted(found)
