"""Many clips: which ones need extracting, and a Ray Data map that yields their feature records in order.

A record is what goes into a clip's feature file: the arrays of features.schema plus the header keys
(schema.RECORD_KEYS), or only the header with an `error` when the clip cannot be used. Both hashes sit in
the file itself, so a file is up to date exactly when its hashes match; a killed run loses only the clips
in flight.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict, dataclass
from functools import partial
from typing import Callable, Iterator

import pandas as pd
from tqdm.auto import tqdm

from talking_face.features.extract import extract_clip, feature_summary
from talking_face.media.errors import MediaError


@dataclass(frozen=True)
class ClipJob:
    """One clip to extract, from a manifest row."""

    clip_id: str
    video_path: str
    audio_path: str
    content_hash: str
    expected_frames: int = 0  # for the progress bar only


def plan_jobs(manifest: pd.DataFrame, index: pd.DataFrame, params_hash: str, fps: float) -> tuple[list[ClipJob], pd.DataFrame]:
    """Jobs for the manifest clips whose feature file is missing or has other hashes, sorted by clip_id.

    `index` has columns id, params_hash, content_hash (one row per existing feature file). Also returns
    a table clip_id, status ("extract" or "up_to_date") covering every manifest clip.
    """
    current = set(zip(index["id"], index["params_hash"], index["content_hash"])) if len(index) else set()
    jobs, status = [], []
    for row in manifest.sort_values("clip_id").itertuples(index=False):
        up_to_date = (row.clip_id, params_hash, row.content_hash) in current
        status.append({"clip_id": row.clip_id, "status": "up_to_date" if up_to_date else "extract"})
        if not up_to_date:
            frames = int(round(float(row.duration_s) * fps))
            jobs.append(ClipJob(row.clip_id, str(row.path), str(row.audio_path), str(row.content_hash), frames))
    return jobs, pd.DataFrame(status, columns=["clip_id", "status"])


def clip_record(job: ClipJob, params: dict, params_hash: str) -> dict:
    """The feature file of one clip: arrays, hashes and a JSON summary; or hashes and the reason it failed."""
    header = {"params_hash": params_hash, "content_hash": job.content_hash}
    try:
        features = extract_clip(job.video_path, job.audio_path, params)
    except MediaError as error:
        return {**header, "error": error.problem}
    return {**features, **header, "summary": json.dumps(feature_summary(job.clip_id, features))}


def extract_row(row: dict, params: dict, params_hash: str) -> dict:
    """A Ray Data map function: the record of the clip a row's job names, pickled (its arrays differ in
    shape from clip to clip, which Arrow columns would convert for nothing)."""
    import cv2

    cv2.setNumThreads(1)  # Ray already runs one task per core; OpenCV's own threads would oversubscribe
    job = ClipJob(**{key: row[key] for key in ClipJob.__dataclass_fields__})
    return {"clip_id": job.clip_id, "record": pickle.dumps(clip_record(job, params, params_hash))}


def _start_ray(num_cpus: int | None, address: str | None) -> bool:
    """Starts Ray (a local instance, or joins `address`) unless it runs already; True when started here."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Worker output would tear the progress bars; task errors still come back as exceptions.
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return True


def extract_in_parallel(
    jobs: list[ClipJob],
    params: dict,
    params_hash: str,
    num_cpus: int | None = None,
    address: str | None = None,
    max_in_flight: int | None = None,
) -> Iterator[tuple[str, dict]]:
    """Yields (clip_id, record) in job order while a Ray Data map extracts the clips on every core of the
    cluster, one task per clip and core, at most `max_in_flight` at a time (default: one per CPU).

    Ray Data's streaming execution bounds what waits in memory however many clips there are. Ray is
    started on first use and shut down at the end when this call started it; no jobs, no Ray.
    """
    if not jobs:
        return
    import ray.data

    started = _start_ray(num_cpus, address)
    clips = tqdm(total=len(jobs), desc="feature clips", unit="clip")
    frames = tqdm(total=sum(job.expected_frames for job in jobs), desc="feature frames", unit="frame")
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # records come back in job order, as Kedro saves them
        context.enable_progress_bars = False
        dataset = ray.data.from_items([asdict(job) for job in jobs], override_num_blocks=len(jobs))
        dataset = dataset.map(
            extract_row, fn_kwargs={"params": params, "params_hash": params_hash}, num_cpus=1,
            concurrency=max_in_flight,
        )  # fmt: skip
        for row in dataset.iter_rows():
            record = pickle.loads(row["record"])
            clips.update(1)
            frames.update(len(record["frames"]) if "frames" in record else 0)
            yield row["clip_id"], record
    finally:
        clips.close()
        frames.close()
        if started:
            ray.shutdown()


def lazy_partitions(stream: Iterator[tuple[str, dict]], clip_ids: list[str]) -> dict[str, Callable[[], dict]]:
    """One loader per clip for a lazily saved PartitionedDataset, all pulling from one ordered stream.

    PartitionedDataset saves partitions in sorted id order, so with `stream` in that order each loader
    takes just the next record and nothing piles up in memory; out-of-order calls still work (buffered).
    """
    arrived: dict[str, dict] = {}

    def load(clip_id: str) -> dict:
        while clip_id not in arrived:
            got = next(stream, None)
            if got is None:
                raise RuntimeError(f"the extraction stream ended before clip {clip_id}")
            arrived[got[0]] = got[1]
        return arrived.pop(clip_id)

    return {clip_id: partial(load, clip_id) for clip_id in clip_ids}


def collect_records(manifest: pd.DataFrame, index: pd.DataFrame, params_hash: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads the headers of the manifest clips' feature files: (summary rows, failures clip_id/path/reason).

    `index` has columns id, params_hash, content_hash, summary, error. Summary rows gain the clip's
    speaker, corpus and split (corpus only when the manifest has one). Raises RuntimeError when a manifest clip has no up-to-date file.
    """
    labels = ["speaker", *(["corpus"] if "corpus" in manifest else []), "split"]
    clips = manifest[["clip_id", "path", "content_hash", *labels]]
    current = index[index["params_hash"] == params_hash].rename(columns={"id": "clip_id"})
    current = clips.merge(current.drop(columns="params_hash"), on=["clip_id", "content_hash"], how="left")
    missing = current["summary"].isna() & current["error"].isna()
    if missing.any():
        raise RuntimeError(
            f"{int(missing.sum())} manifest clips have no up-to-date feature file "
            f"(first: {current.loc[missing, 'clip_id'].iloc[0]}); run the features pipeline again"
        )
    failed = current[current["error"].notna()]
    extracted = current[current["error"].isna()]
    rows = [json.loads(text) for text in extracted["summary"]]
    summary = pd.DataFrame(rows).merge(extracted[["clip_id", *labels]], on="clip_id") if rows else pd.DataFrame()
    return summary, failed[["clip_id", "path"]].assign(reason=failed["error"].astype(str)).reset_index(drop=True)
