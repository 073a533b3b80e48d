"""The records ingestion passes around: clip candidates, rejections, and the verdict on a whole run."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import pandas as pd

from talking_face.checks import DataCheckError

REJECTED_COLUMNS = ["clip_id", "path", "stage", "reason"]
REJECTED_CLIPS_REPORT = "rejected_clips"  # the report's catalog entry (data/08_reporting/rejected_clips.csv)


class IngestError(RuntimeError):
    """The corpus cannot be read (no raw folder, a bad speaker map) or is unusable as a whole."""


class RejectedClipsError(IngestError, DataCheckError):
    """Nothing accepted, or more rejected than allowed; the rejected clips report says why."""

    def __init__(self, message: str):
        DataCheckError.__init__(self, "ingest.max_rejected_fraction", message, REJECTED_CLIPS_REPORT)


@dataclass(frozen=True)
class ClipCandidate:
    """A video file found on disk, with the speaker and audio source its layout implies."""

    clip_id: str
    speaker: str
    path: str
    audio_path: str
    layout: str
    corpus: str = ""


@dataclass(frozen=True)
class Rejection:
    """A clip left out of the manifest, the stage that refused it and why (one line)."""

    clip_id: str
    path: str
    stage: str
    reason: str


def make_clip_id(speaker: str, stem: str) -> str:
    """'<speaker>_<stem>' restricted to [A-Za-z0-9_-]; the speaker is not repeated when the stem has it."""
    name = stem if stem.startswith(f"{speaker}_") else f"{speaker}_{stem}"
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def rejections_frame(*groups) -> pd.DataFrame:
    """One table of rejections (Rejection records or frames with REJECTED_COLUMNS), in the given order."""
    frames = []
    for group in groups:
        if isinstance(group, pd.DataFrame):
            frames.append(group[REJECTED_COLUMNS])
        else:
            frames.append(pd.DataFrame([asdict(item) for item in group], columns=REJECTED_COLUMNS))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=REJECTED_COLUMNS)
    return table.astype(str)


def check_outcome(accepted: int, rejected: int, max_rejected_fraction: float) -> None:
    """Raises RejectedClipsError (one line) when no clip is accepted or the rejected share is above the limit."""
    total = accepted + rejected
    if total == 0:
        raise RejectedClipsError("no video clips found under the raw folders (parameters ingest.raw_dirs or ingest.raw_dir)")
    if accepted == 0:
        raise RejectedClipsError(f"no clip accepted out of {total} found")
    if rejected / total > max_rejected_fraction:
        raise RejectedClipsError(
            f"{rejected} of {total} clips rejected ({rejected / total:.0%}), above the allowed {max_rejected_fraction:.0%}"
        )

# The manifest contract: one row per accepted clip, in this column order.
# `person` is the speaker, or the first of several speakers of other corpora found to be one person.
MANIFEST_COLUMNS = [
    "clip_id", "corpus", "speaker", "person", "path", "audio_path", "layout", "fps", "frame_count", "duration_s",
    "width", "height", "audio_rate", "audio_channels", "audio_duration_s", "av_diff_s", "file_size", "content_hash",
    "needs", "split",
]
