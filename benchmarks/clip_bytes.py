"""Bytes per clip, array by array, in the old npz feature file and in the compact shard row; what decoding
costs beside reading; and how far the decoded frames, audio and flow are from the stored ones.

    .venv/bin/python benchmarks/clip_bytes.py FEATURE.npz [FEATURE.npz ...] [--format jpeg|png] [--quality 95] [--json out.json]

"old on disk" is the member's compressed size inside the npz (zlib level 1, flow stored); "compact" is the
row's column compressed with zstd as the shard's Parquet writer does (frames: the images themselves). Read
times are for the bytes already in memory (decompress + parse), the recompute times one core.
"""

from __future__ import annotations

import argparse
import json
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa

from talking_face.face.heatmaps import contour_heatmaps
from talking_face.features.compact import RENDER_KEYS, STORED_ARRAYS, decode_clip, encode_clip
from talking_face.features.extract import resolve_params
from talking_face.features.flow import farneback_flow
from talking_face.training.data import load_clip


def zstd_bytes(data: bytes) -> int:
    return pa.compress(data, codec="zstd", asbytes=True).__len__()


def npz_member_bytes(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename[: -len(".npy")]: info.compress_size for info in archive.infolist()}


def timed(function, repeat: int = 3) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat


def measure(path: Path, frame_format: str, quality: int) -> dict:
    clip = load_clip(path)
    params = resolve_params({"crop_size": clip["frames"].shape[1]})
    row = encode_clip(clip, params, frame_format, quality)
    old = npz_member_bytes(path)
    compact = {"frames": sum(len(image) for image in row["frames"]), "audio": zstd_bytes(row["audio"]),
               **{key: zstd_bytes(row[key]) for key in STORED_ARRAYS}}  # fmt: skip
    raw = {key: int(np.asarray(clip[key]).nbytes) for key in (*STORED_ARRAYS, "frames", "heatmaps", "flow", "audio")}
    decoded = decode_clip(row)
    render = {key: params[key] for key in RENDER_KEYS}
    size = clip["frames"].shape[1]
    cv2.setNumThreads(1)
    mse = np.mean((decoded["frames"].astype(np.float64) - clip["frames"]) ** 2)
    flow_error = np.hypot(*np.moveaxis(decoded["flow"][:-1].astype(np.float32) - clip["flow"][:-1], 1, 0))
    return {
        "clip": path.name,
        "crop_size": size,
        "frames": len(clip["frames"]),
        "raw_bytes": raw,
        "old_disk_bytes": {key: old.get(key, 0) for key in raw},
        "old_file_bytes": path.stat().st_size,
        "compact_bytes": compact,
        "compact_total": sum(compact.values()),
        "seconds": {
            "read_old_flow": timed(lambda: read_member(path, "flow")),
            "compute_flow": timed(lambda: farneback_flow(decoded["frames"], render["flow_max_size"], **render["farneback"])),
            "read_old_heatmaps": timed(lambda: read_member(path, "heatmaps")),
            "render_heatmaps": timed(lambda: contour_heatmaps(decoded["landmarks"], size, 96, render["heatmap_sigma"])),
            "decode_frames": timed(lambda: [cv2.imdecode(np.frombuffer(b, np.uint8), 1) for b in row["frames"]]),
            "decode_clip": timed(lambda: decode_clip(row)),
        },
        "frames_psnr_db": float(10 * np.log10(255**2 / mse)) if mse else float("inf"),
        "heatmaps_equal": bool(np.array_equal(decoded["heatmaps"], clip["heatmaps"])),
        "audio_max_error": float(np.abs(decoded["audio"] - clip["audio"]).max()),
        "flow_error_px": {"mean": float(flow_error.mean()), "p99": float(np.percentile(flow_error, 99))},
        "flow_speed_px": float(np.hypot(*np.moveaxis(clip["flow"][:-1].astype(np.float32), 1, 0)).mean()),
    }


def read_member(path: Path, key: str) -> np.ndarray:
    """One array of an npz, inflated and parsed (np.load's work for that key)."""
    with np.load(path) as archive:
        return archive[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--quality", type=int, default=95)
    parser.add_argument("--format", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [measure(path, args.format, args.quality) for path in args.paths]
    for result in results:
        print(f"\n{result['clip']}: {result['crop_size']} px, {result['frames']} frames; old file "
              f"{result['old_file_bytes'] / 1e6:.2f} MB, compact {result['compact_total'] / 1e6:.3f} MB "
              f"({result['old_file_bytes'] / result['compact_total']:.1f}x smaller)")  # fmt: skip
        print(f"{'array':<12}{'raw MB':>10}{'old disk MB':>13}{'compact MB':>12}")
        for key, raw in result["raw_bytes"].items():
            compact = result["compact_bytes"].get(key, 0)
            print(f"{key:<12}{raw / 1e6:>10.3f}{result['old_disk_bytes'][key] / 1e6:>13.3f}{compact / 1e6:>12.3f}")
        print("seconds:", {key: round(value, 4) for key, value in result["seconds"].items()})
        print(f"frames PSNR {result['frames_psnr_db']:.1f} dB, heatmaps equal {result['heatmaps_equal']}, audio max "
              f"error {result['audio_max_error']:.2e}, flow error {result['flow_error_px']} px "
              f"(mean speed {result['flow_speed_px']:.3f} px)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
