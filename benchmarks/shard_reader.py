"""Samples per second the shard stream gives each training worker, from local disk and from a loopback S3
server (moto, standing in for S3, GCS or MinIO), with 1, 2 and 4 simulated workers; beside what one GAN
step consumes.

    .venv/bin/python benchmarks/shard_reader.py FEATURE.npz [...] [--clips 32] [--workers 1 2 4]
        [--rollout 6] [--stores local s3] [--step-preset cpu|paper] [--step-batch 2] [--json out.json]

The feature files (one crop size) are repeated to --clips clips, encoded (features.compact) and written as
shards of 8 clips to a temp folder and to the S3 server. Each simulated worker is a Ray task reading its
rank's shards for one epoch (training.stream.ShardStream: Ray Data read, decode, heatmaps and flow drawn,
sequences cut, batches collated); a sample is one rollout sequence. The workers share this machine's cores,
so 4 workers on 2 cores measure contention, not a cluster. The step demand is sequences per second of one
GANTask.step on this CPU for the preset's shapes (the first step, a warm-up, left out).
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import ray

from talking_face.features.compact import encode_clip
from talking_face.features.extract import resolve_params
from talking_face.features.shards import read_index, resolve_filesystem, split_index, write_shards
from talking_face.training.data import load_clip
from talking_face.training.stream import ShardStream

BATCH = 4


def epoch_rate(index: dict, options: dict, storage: dict | None, rank: int, world: int) -> dict:
    stream = ShardStream(index, options, BATCH, seed=0, rank=rank, world_size=world, storage=storage)
    start, sequences = time.perf_counter(), 0
    batches = stream.batches(0)
    for _ in range(stream.batches_in_epoch(0)):
        sequences += len(next(batches)["sequence"])
    batches.close()
    seconds = time.perf_counter() - start
    return {"sequences": sequences, "seconds": seconds, "per_s": sequences / seconds}


def reader_rates(index: dict, options: dict, storage: dict | None, workers: int) -> dict:
    task = ray.remote(num_cpus=0)(epoch_rate)
    results = ray.get([task.remote(index, options, storage, rank, workers) for rank in range(workers)])
    return {"workers": workers, "per_worker_per_s": [round(r["per_s"], 1) for r in results],
            "total_per_s": round(sum(r["sequences"] for r in results) / max(r["seconds"] for r in results), 1)}  # fmt: skip


def step_demand(index: dict, storage: dict | None, options: dict, preset: str, batch_size: int, size: int) -> dict:
    """Sequences per second one GAN step of the preset consumes on this CPU (batches from the stream)."""
    from talking_face.training.gan import GANTask
    from talking_face.training.run import loop_config
    import yaml

    params = yaml.safe_load(Path("conf/base/parameters_train.yml").read_text())["train"]
    params = {**params, "batch_size": batch_size, "rollout_frames": options["rollout"]}
    config = loop_config(params, {"preset": preset}, {"index": index}, size, seed=0, ray_params={})
    task = GANTask(config)
    stream = ShardStream(index, {**options, "context": config["context_frames"],
                                 "audio_window": config["audio_window"]}, batch_size, seed=0, storage=storage)  # fmt: skip
    batches = stream.batches(0)
    task.step(next(batches), nullcontext())
    start = time.perf_counter()
    task.step(next(batches), nullcontext())
    seconds = time.perf_counter() - start
    batches.close()
    return {"preset": preset, "batch": batch_size, "step_s": round(seconds, 2), "demand_per_s": round(batch_size / seconds, 2)}


def moto_storage(bucket: str):
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    storage = {"endpoint_override": f"127.0.0.1:{port}", "scheme": "http", "access_key": "bench",
               "secret_key": "bench", "region": "us-east-1", "allow_bucket_creation": True}  # fmt: skip
    resolve_filesystem(f"s3://{bucket}", storage)[0].create_dir(bucket)
    return server, storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rollout", type=int, default=6)
    parser.add_argument("--stores", nargs="+", choices=("local", "s3"), default=["local", "s3"])
    parser.add_argument("--step-preset", default="cpu")
    parser.add_argument("--step-batch", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    clips = [load_clip(path) for path in args.paths]
    size = clips[0]["frames"].shape[1]
    extract = resolve_params({"crop_size": size})
    rows = [encode_clip({**clips[n % len(clips)], "clip_id": f"clip{n:04d}"}, extract) for n in range(args.clips)]
    options = {"context": 5, "audio_window": 5, "rollout": args.rollout}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    server, storage = moto_storage("bench")
    results = {"crop_size": size, "clips": args.clips, "rollout": args.rollout, "batch": BATCH, "readers": {}}
    try:
        with tempfile.TemporaryDirectory() as folder:
            stores = {"local": (f"{folder}/shards", None), "s3": ("s3://bench/shards", storage)}
            for place in args.stores:
                uri, options_of_store = stores[place]
                write_shards({"train": rows}, uri, clips_per_shard=8, storage=options_of_store)
                index = split_index(read_index(uri, options_of_store), "train")
                results["shard_bytes_per_clip"] = sum(s["bytes"] for s in index["shards"]) / args.clips
                results["readers"][place] = [reader_rates(index, options, options_of_store, w) for w in args.workers]
                print(place, results["readers"][place], flush=True)
            results["step"] = step_demand(index, options_of_store, options, args.step_preset, args.step_batch, size)
            print("step", results["step"], flush=True)
    finally:
        server.stop()
        ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
