"""Thin nodes over talking_face.ingest and talking_face.validation; parameters come in as the `ingest` dict."""

from __future__ import annotations

import logging

import pandas as pd

from talking_face.ingest.discover import discover_clips
from talking_face.ingest.probe import probe_clips
from talking_face.ingest.records import MANIFEST_COLUMNS, check_outcome, rejections_frame
from talking_face.ingest.split import assign_splits
from talking_face.validation.expectations import validate_manifest

logger = logging.getLogger(__name__)


def discover_and_probe(params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finds the clips under params['raw_dir'] and probes them; returns (probed rows, rejections so far)."""
    candidates, not_clips = discover_clips(params["raw_dir"], params.get("speaker_map"))
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


def split_clips(accepted: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The manifest: accepted clips with their speaker-level split, in the contract's columns."""
    manifest = assign_splits(
        accepted, params["test_unseen_speaker_fraction"], params["test_seen_clip_fraction"], params["seed"]
    )
    logger.info("ingest split: %s", manifest["split"].value_counts().to_dict())
    return manifest[MANIFEST_COLUMNS]
