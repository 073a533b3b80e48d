"""Thin nodes over talking_face.ingest and talking_face.validation; parameters come in as the `ingest` dict."""

from __future__ import annotations

import logging

import pandas as pd

from talking_face.ingest.people import assign_people
from talking_face.ingest.probe import probe_clips
from talking_face.ingest.records import MANIFEST_COLUMNS, check_outcome, rejections_frame
from talking_face.ingest.sources import discover_sources, raw_sources
from talking_face.ingest.split import assign_splits
from talking_face.validation.expectations import validate_manifest

logger = logging.getLogger(__name__)


def discover_and_probe(params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finds the clips of every raw folder (ingest.sources) and probes them; returns (probed rows, rejections so far)."""
    candidates, not_clips = discover_sources(raw_sources(params))
    probed, unreadable = probe_clips(candidates)
    return probed, rejections_frame(not_clips, unreadable)


def validate_clips(
    probed: pd.DataFrame, earlier: pd.DataFrame, params: dict
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Runs the manifest suite; returns (accepted rows, every rejected clip with its reason, the report)."""
    accepted, failed, report = validate_manifest(probed, params)
    rejected = rejections_frame(earlier, failed.assign(stage="validate"))
    report["clips_found"] = len(probed) + len(earlier)
    report["rejected_before_validation"] = len(earlier)
    report["rejected_total"] = len(rejected)
    report["accepted_total"] = len(accepted)
    return accepted, rejected, report


def check_ingest_outcome(accepted: pd.DataFrame, rejected: pd.DataFrame, report: dict, params: dict) -> pd.DataFrame:
    """Fails the run (IngestError) once the reports are saved, when nothing or too little is accepted."""
    check_outcome(len(accepted), len(rejected), params["max_rejected_fraction"])
    return accepted


def split_clips(accepted: pd.DataFrame, params: dict) -> tuple[pd.DataFrame, dict]:
    """The manifest (accepted clips with their person and person-level split, in the contract's columns) and
    the same-person report (speaker pairs matched by face, and the people of each split)."""
    with_people, matches = assign_people(accepted, params.get("same_person_distance"))
    manifest = assign_splits(
        with_people, params["test_unseen_speaker_fraction"], params["test_seen_clip_fraction"], params["seed"],
        params.get("test_speakers"), params.get("test_corpora"),
    )
    logger.info("ingest split: %s", manifest["split"].value_counts().to_dict())
    people = {split: sorted(set(rows["speaker"])) for split, rows in manifest.groupby("split")}
    report = {"same_person_distance": params.get("same_person_distance"), "matches": matches, "speakers": people}
    return manifest[MANIFEST_COLUMNS], report
