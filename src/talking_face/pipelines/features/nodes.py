"""Thin nodes over talking_face.features and talking_face.validation; parameters come in as the `features` dict."""

from __future__ import annotations

import logging
from functools import partial

import pandas as pd

from talking_face.checks import DataCheckError
from talking_face.features.compact import encode_clip
from talking_face.features.shards import clips_by_split, read_index, write_shards
from talking_face.features.batch import collect_records, extract_in_parallel, lazy_partitions, plan_jobs
from talking_face.features.extract import feature_params_hash, resolve_params
from talking_face.features.panel import feature_panel
from talking_face.features.schema import file_identity
from talking_face.training.data import load_clip
from talking_face.validation.feature_expectations import validate_feature_summary

logger = logging.getLogger(__name__)

REJECTED_COLUMNS = ["clip_id", "path", "stage", "reason"]


def extract_features(manifest: pd.DataFrame, feature_index: pd.DataFrame, params: dict) -> tuple[dict, pd.DataFrame]:
    """Feature files for the clips that lack an up-to-date one, as lazy partitions, and every clip's status.

    The partitions are computed by Ray while Kedro saves them one by one, so memory stays flat and a
    killed run keeps every file already written.
    """
    extract = resolve_params(params["extract"])
    params_hash = feature_params_hash(extract)
    jobs, status = plan_jobs(manifest, feature_index, params_hash, float(extract["fps"]))
    logger.info("features %s: %d clips to extract, %d up to date", params_hash, len(jobs), len(status) - len(jobs))
    stream = extract_in_parallel(jobs, extract, params_hash, params.get("num_cpus"), params.get("ray_address"))
    return lazy_partitions(stream, [job.clip_id for job in jobs]), status


def validate_features(
    manifest: pd.DataFrame, feature_status: pd.DataFrame, feature_index: pd.DataFrame, params: dict
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(feature summary of the accepted clips, rejected clips with stage and reason, validation report).

    Runs after extract_features (it takes its status table), so `feature_index` reads the files just written.
    """
    extract = resolve_params(params["extract"])
    summary, failed = collect_records(manifest, feature_index, feature_params_hash(extract))
    rejected = [failed.assign(stage="features")]
    report = {"clips": len(feature_status), "extracted_now": int((feature_status["status"] == "extract").sum())}
    if len(summary):
        summary, invalid, report["validation"] = validate_feature_summary(
            summary, params["validation"], int(extract["crop_size"])
        )
        paths = manifest.set_index("clip_id")["path"]
        rejected.append(invalid.assign(path=invalid["clip_id"].map(paths), stage="feature_validation"))
    rejected = pd.concat(rejected, ignore_index=True)[REJECTED_COLUMNS].astype(str)
    report.update(accepted=len(summary), rejected=len(rejected))
    logger.info("features: %d clips accepted, %d rejected", len(summary), len(rejected))
    return summary, rejected, report


def check_features_outcome(feature_summary: pd.DataFrame, feature_rejected_clips: pd.DataFrame) -> None:
    """Stops the run (DataCheckError naming the rejections report) once the reports are saved, when no clip
    passed extraction and the feature suite."""
    if not len(feature_summary):
        raise DataCheckError(
            "features", f"no clip passed feature extraction and validation ({len(feature_rejected_clips)} rejected)",
            "feature_rejected_clips",
        )


def write_feature_shards(feature_summary: pd.DataFrame, feature_files: dict[str, str], params: dict) -> dict:
    """The accepted clips of every split as compact shards at `shards.uri` (features.shards), and their
    index; an index that already lists the same clips, encoded the same way, is kept as it is."""
    shards, extract = params["shards"], resolve_params(params["extract"])
    settings = {"frame_format": shards["frame_format"], "jpeg_quality": int(shards["jpeg_quality"]),
                "params_hash": feature_params_hash(extract)}  # fmt: skip
    ids = {split: sorted(group["clip_id"]) for split, group in feature_summary.groupby("split")} if len(feature_summary) else {}
    wanted = {split: [{"clip_id": clip_id, **file_identity(feature_files[clip_id])} for clip_id in clip_ids]
              for split, clip_ids in ids.items()}  # fmt: skip
    try:
        existing = read_index(shards["uri"], shards.get("storage"))
    except FileNotFoundError:
        existing = None
    if existing and {key: value for key, value in existing["settings"].items() if key != "clips_per_shard"} == settings \
            and existing["settings"]["clips_per_shard"] == int(shards["clips_per_shard"]) and _listing(existing) == wanted:
        logger.info("feature shards at %s are up to date", shards["uri"])
        return existing

    def rows(clip_ids):
        for clip_id in clip_ids:
            clip = {**load_clip(feature_files[clip_id]), "clip_id": clip_id}
            yield encode_clip(clip, extract, shards["frame_format"], int(shards["jpeg_quality"]))

    index = write_shards({split: rows(clip_ids) for split, clip_ids in ids.items()}, shards["uri"],
                         int(shards["clips_per_shard"]), shards.get("storage"), settings)  # fmt: skip
    logger.info("feature shards: %d clips in %d shards at %s", sum(map(len, ids.values())), len(index["shards"]), shards["uri"])
    return index


def _listing(index: dict) -> dict[str, list[dict]]:
    keys = ("clip_id", "params_hash", "content_hash")
    return {split: [{key: clip[key] for key in keys} for clip in clips] for split, clips in clips_by_split(index).items()}


def render_feature_panels(feature_summary: pd.DataFrame, feature_clips: dict, params: dict) -> dict:
    """Lazy PNG panels (matplotlib figures) of the first `n_panels` accepted clips by id."""
    chosen = sorted(feature_summary["clip_id"])[: int(params["n_panels"])] if len(feature_summary) else []
    return {clip_id: partial(_panel, feature_clips[clip_id], clip_id) for clip_id in chosen}


def _panel(load, clip_id: str):
    return feature_panel(load(), title=clip_id)
