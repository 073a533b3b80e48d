"""Frames per second of the per-clip feature step on the real GRID clips, with 1 and 2 Ray workers.

    .venv/bin/python benchmarks/features_speed.py [--grid ../shared/data/grid] [--sizes 96 256]
        [--workers 1 2] [--repeat 2] [--flow-max-size 128] [--json out.json]

For each crop size: the per-stage breakdown in one process (ms per frame), then the Ray run for each
worker count (workers warmed up first, so model loading is not counted), then the cost of writing the
feature files (npz as conf/base/catalog_features.yml writes them), which happens in the Kedro driver.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2

from talking_face.datasets.npz import write_npz
from talking_face.features.batch import ClipJob, extract_in_parallel
from talking_face.features.extract import extract_clip, feature_params_hash, resolve_params

ROOT = Path(__file__).resolve().parents[1]


def grid_jobs(grid: Path, repeat: int) -> list[ClipJob]:
    clips = sorted(grid.glob("*.mpg"))
    if not clips:
        sys.exit(f"{grid}: no GRID clips (*.mpg) found")
    return [ClipJob(f"{clip.stem}_{copy}", str(clip), str(clip), "bench", 75) for copy in range(repeat) for clip in clips]


def stage_breakdown(jobs: list[ClipJob], params: dict, scratch: Path) -> dict:
    """One process, one thread: ms per frame of each stage, plus writing the file."""
    cv2.setNumThreads(1)
    extract_clip(jobs[0].video_path, jobs[0].audio_path, params)  # loads the dlib models
    timings, frames = {}, 0
    for job in jobs:
        features = extract_clip(job.video_path, job.audio_path, params, timings)
        frames += len(features["frames"])
        start = time.perf_counter()
        write_npz(scratch / "bench.npz", features, compresslevel=1, stored_keys=("flow",))  # as the catalog
        timings["write_npz"] = timings.get("write_npz", 0.0) + time.perf_counter() - start
    (scratch / "bench.npz").unlink()
    return {stage: 1000 * seconds / frames for stage, seconds in timings.items()}


def ray_fps(jobs: list[ClipJob], params: dict, workers: int) -> float:
    """Frames per second of extraction through Ray with `workers` local workers (results fetched, not saved)."""
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        params_hash = feature_params_hash(params)
        for _ in extract_in_parallel(jobs[:workers], params, params_hash, max_in_flight=workers):
            pass  # warm-up: every worker loads its models
        start, frames = time.perf_counter(), 0
        for _, record in extract_in_parallel(jobs, params, params_hash):
            frames += len(record["frames"])
        return frames / (time.perf_counter() - start)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=ROOT.parent / "shared" / "data" / "grid")
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 256])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2, help="passes over the 8 clips in each Ray run")
    parser.add_argument("--flow-max-size", type=int, default=128, help="0: Farneback at the full crop size")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    jobs = grid_jobs(args.grid, args.repeat)
    scratch = Path(os.environ.get("TMPDIR", "/tmp"))
    results = {"cpu_count": os.cpu_count(), "clips": len(jobs), "flow_max_size": args.flow_max_size, "sizes": {}}
    for size in args.sizes:
        params = resolve_params({"crop_size": size, "flow_max_size": args.flow_max_size or None})
        stages = stage_breakdown(jobs[: len(jobs) // args.repeat], params, scratch)
        fps = {workers: ray_fps(jobs, params, workers) for workers in args.workers}
        results["sizes"][size] = {"ms_per_frame": stages, "fps": fps}
        print(f"\ncrop {size}x{size}: ms per frame, one thread")
        for stage, ms in stages.items():
            print(f"  {stage:<10} {ms:6.2f}")
        extract_ms = sum(ms for stage, ms in stages.items() if stage != "write_npz")
        print(f"  {'extract':<10} {extract_ms:6.2f}  ({1000 / extract_ms:.0f} frames/s)")
        base = fps[args.workers[0]]
        for workers, value in fps.items():
            print(f"  Ray, {workers} worker(s): {value:6.1f} frames/s  ({value / base:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
