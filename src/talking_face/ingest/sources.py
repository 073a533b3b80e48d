"""Several raw folders in one run: each a corpus with its own layout and optional speaker map.

    ingest:
      raw_dirs:                      # a folder, or {path, corpus, speaker_map}; corpus defaults to the folder's name
        - {path: /data/grid_more, corpus: grid}
        - /data/voxceleb2
      raw_dir: null                  # one folder instead of the list (with speaker_map and corpus beside it)

When the run holds more than one corpus, speakers are named "<corpus>_<speaker>" (unless the name already
starts so), so `s1` of GRID and `s1` of another corpus stay two speakers; two folders of the same corpus
share speaker names, as one corpus split over folders does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from talking_face.ingest.discover import discover_clips
from talking_face.ingest.records import ClipCandidate, IngestError, Rejection, make_clip_id


@dataclass(frozen=True)
class RawSource:
    path: str
    corpus: str
    speaker_map: str | None = None


def raw_sources(params: dict) -> list[RawSource]:
    """The raw folders of the `ingest` parameters: `raw_dir` when set, else the `raw_dirs` list."""
    if params.get("raw_dir"):
        entries = [{"path": params["raw_dir"], "corpus": params.get("corpus"), "speaker_map": params.get("speaker_map")}]
    else:
        entries = params.get("raw_dirs") or []
    if not entries:
        raise IngestError("no raw folder configured: set ingest.raw_dirs (a list) or ingest.raw_dir")
    sources = []
    for entry in entries:
        entry = {"path": entry} if isinstance(entry, str) else dict(entry)
        if not entry.get("path"):
            raise IngestError(f"ingest.raw_dirs entry {entry} has no path")
        corpus = entry.get("corpus") or Path(entry["path"]).expanduser().resolve().name
        sources.append(RawSource(str(entry["path"]), str(corpus), entry.get("speaker_map")))
    return sources


def discover_sources(sources: list[RawSource]) -> tuple[list[ClipCandidate], list[Rejection]]:
    """Candidates and rejections of every folder; speakers prefixed by their corpus when corpora mix."""
    candidates, rejections = [], []
    for source in sources:
        found, refused = discover_clips(source.path, source.speaker_map, source.corpus)
        candidates.extend(found)
        rejections.extend(refused)
    if len({source.corpus for source in sources}) > 1:
        candidates = [_prefixed(candidate) for candidate in candidates]
    return candidates, rejections


def _prefixed(candidate: ClipCandidate) -> ClipCandidate:
    corpus, speaker = candidate.corpus, candidate.speaker
    if speaker == corpus or speaker.startswith(f"{corpus}_"):
        return candidate
    named = f"{corpus}_{speaker}"
    stem = candidate.clip_id[len(speaker) + 1:] if candidate.clip_id.startswith(f"{speaker}_") else candidate.clip_id
    return replace(candidate, speaker=named, clip_id=make_clip_id(named, stem))
