"""Per-split means of the per-clip metrics: the flat numeric dict that is the metrics file (DVC's metrics
file, MLflow metrics, model-version tags) and the input of the promotion gate.

Keys are "<set>.<system>.<metric>" (e.g. "test_unseen.model.lmd_mouth", "test_unseen.baseline.ssim") and
"<set>.n_clips", where a set is a split or, when the test clips come from several corpora, also one corpus
of a split ("test_unseen/grid"): GRID's figures are not VoxCeleb's, so each corpus gets its own rows. Means skip clips where a metric is undefined (NaN); a metric undefined on every clip, or
not measured at all (WER without a lip-reading model), has no key rather than a non-numeric value.
"""

from __future__ import annotations

import math

import pandas as pd

from talking_face.evaluation.blinks import rate_interval
from talking_face.evaluation.run import SYSTEMS

# The metric columns of the per-clip table, in the order of the paper's Table 1 and then ours.
METRICS = (
    "ssim",  # unitless, higher is better
    "psnr",  # dB, higher is better
    "cpbd",  # unitless 0-1, higher is sharper
    "wer",  # word error rate, only with a lip-reading model
    "identity_cosine",  # the paper's ACD-C: 1 - cosine similarity of dlib embeddings
    "identity_euclidean",  # the paper's ACD-E: L2 distance of dlib embeddings
    "blinks_per_s",  # 1/s, best close to the real video's
    "lmd_mouth",  # pixels of a 256x256 crop, lower is better
    "lmd_all",
    "sync_corr",  # Pearson r of mouth opening and audio energy, higher is better
    "sync_lag",  # frames
    "phone_sync_corr",  # Pearson r of mouth opening and the opening the speech's phonemes ask for, higher is better
    "phone_sync_lag",  # frames
    "phone_offset_ok",  # share of clips whose phoneme sync lag is within a frame of 0
    "expert_distance",  # the lip-sync expert's distance at its best offset (LSE-D style, ours), lower is better
    "expert_confidence",  # its confidence (LSE-C style, ours), higher is better
    "expert_offset",  # frames
    "expert_offset_ok",  # share of clips whose expert offset is within a frame of 0
    "expert_shifted_confidence",  # the real video with its audio half a second late: out of sync
    "motion_corr",  # Pearson r of the mouth opening with the real one: 0 still, 1 the real video
    "motion_amplitude",  # its standard deviation over the real one's: 0 still, 1 as far as the real mouth
    "mouth_interior",  # grey level inside the inner lips where the real mouth is open (dark: a real mouth)
    "face_detected_fraction",
)
POOLED_BLINKS_CONFIDENCE = 0.95


def evaluation_sets(per_clip: pd.DataFrame, splits: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """(set name, rows) per split, each followed by its corpora ("<split>/<corpus>") when there are several."""
    several = "corpus" in per_clip and per_clip["corpus"].nunique() > 1
    sets = []
    for split in splits:
        rows = per_clip[per_clip["split"] == split]
        sets.append((split, rows))
        if several:
            sets.extend((f"{split}/{corpus}", group) for corpus, group in rows.groupby("corpus", sort=True))
    return sets


def set_names(summary: dict[str, float], splits: list[str]) -> list[str]:
    """The sets of a summary in report order: each split, then its corpora."""
    names = {key.rsplit(".", 1)[0] for key in summary if key.endswith(".n_clips")}
    return [name for split in splits for name in sorted(names) if name == split or name.startswith(f"{split}/")]


def summarise(per_clip: pd.DataFrame, splits: list[str]) -> dict[str, float]:
    """Mean of every metric per evaluation set and system over the clips of `per_clip` (`run.evaluate_model`)."""
    summary: dict[str, float] = {}
    for name, rows in evaluation_sets(per_clip, splits):
        summary[f"{name}.n_clips"] = float(rows["clip_id"].nunique())
        for system in SYSTEMS:
            system_rows = rows[rows["system"] == system]
            for metric in METRICS:
                if metric not in system_rows:
                    continue
                mean = pd.to_numeric(system_rows[metric], errors="coerce").mean()
                if isinstance(mean, float) and math.isfinite(mean):
                    summary[f"{name}.{system}.{metric}"] = float(mean)
            summary.update(pooled_blinks(system_rows, f"{name}.{system}"))
    return dict(sorted(summary.items()))


def pooled_blinks(rows: pd.DataFrame, prefix: str) -> dict[str, float]:
    """The blinks of all clips over their whole length: count, rate (1/s) and its exact Poisson interval
    (blink_rate_low, blink_rate_high at POOLED_BLINKS_CONFIDENCE): a few blinks in a few seconds say little."""
    if "blink_count" not in rows or "duration_s" not in rows or rows.empty:
        return {}
    count = float(pd.to_numeric(rows["blink_count"], errors="coerce").sum())
    seconds = float(pd.to_numeric(rows["duration_s"], errors="coerce").sum())
    if seconds <= 0:
        return {}
    low, high = rate_interval(count, seconds, POOLED_BLINKS_CONFIDENCE)
    return {f"{prefix}.blinks_total": count, f"{prefix}.blink_rate": count / seconds,
            f"{prefix}.blink_rate_low": low, f"{prefix}.blink_rate_high": high}  # fmt: skip


def metric_history(summary: dict[str, float], step: int = 0) -> dict[str, dict]:
    """The summary in kedro-mlflow's MlflowMetricsHistoryDataset form: {key: {"value": v, "step": step}}."""
    return {key: {"value": float(value), "step": step} for key, value in summary.items()}


def split_metrics(summary: dict[str, float], split: str, system: str) -> dict[str, float]:
    """{metric: value} of one evaluation set (a split, or "<split>/<corpus>") and system of a summary."""
    prefix = f"{split}.{system}."
    return {key[len(prefix):]: value for key, value in summary.items() if key.startswith(prefix)}
