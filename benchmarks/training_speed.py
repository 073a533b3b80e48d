"""Training throughput of the MAN GAN: frames per second per step (discriminator + generator update).

    .venv/bin/python benchmarks/training_speed.py [--sizes 64 256] [--workers 1 2] [--steps 12] [--rollout 6]

Runs the real training loop (training.gan.gan_loop) under Ray Train on synthetic feature files of the
requested crop size, so the figure includes data loading, DDP, the rollout of each sequence on the model's
own frames and the Ray reporting overhead, and prints a table: crop size, preset, Ray workers, sequences
per worker x frames per sequence, seconds per step, frames per second. The first steps (warm-up) are left
out. On a GPU machine pass --gpu (bf16 autocast, one worker per GPU).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import yaml

from talking_face.features.schema import HEATMAP_SIZE, N_HEATMAPS, N_MEL, N_MFCC
from talking_face.training import ray_run
from talking_face.training.gan import GANTask
from talking_face.training.loop import run_task, seed_everything
from talking_face.training.run import loop_config

ROOT = Path(__file__).resolve().parents[1]


def synthetic_clip(path: Path, size: int, frames: int = 50) -> str:
    """A feature file with the schema's keys and shapes (content is noise: only speed is measured)."""
    rng = np.random.default_rng(0)
    np.savez(
        path,
        frames=rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8),
        heatmaps=rng.integers(0, 255, (frames, N_HEATMAPS, HEATMAP_SIZE, HEATMAP_SIZE), dtype=np.uint8),
        flow=rng.normal(size=(frames, 2, size, size)).astype(np.float16),
        mel=rng.normal(-30, 20, (frames, N_MEL)).astype(np.float32),
        mfcc=rng.normal(0, 100, (frames, N_MFCC)).astype(np.float32),
        pitch=rng.integers(0, 255, frames, dtype=np.uint8),
        energy=rng.integers(0, 255, frames, dtype=np.uint8),
    )
    return str(path)


def timed_loop(config: dict) -> None:
    """gan_loop with a wall-clock report of the steps after the warm-up."""
    import ray.train

    seed_everything(config["seed"])
    task = GANTask(config)
    original_step, times = task.step, []

    def step(batch, autocast):
        start = time.perf_counter()
        metrics = original_step(batch, autocast)
        times.append(time.perf_counter() - start)
        return metrics

    task.step = step
    run_task(task, config)
    if ray.train.get_context().get_world_rank() == 0:
        Path(config["timing_file"]).write_text(str(float(np.median(times[config["warmup"] :]))))


def measure(size: int, preset: str, workers: int, steps: int, batch: int, rollout: int, gpu: bool, folder: Path) -> dict:
    paths = [synthetic_clip(folder / f"clip{size}_{i}.npz", size) for i in range(max(2, workers))]
    params = yaml.safe_load((ROOT / "conf/base/parameters_train.yml").read_text())["train"]
    params.update(steps=steps, batch_size=batch, rollout_frames=rollout, log_every=10**6, image_every=10**6)
    params.update(checkpoint_every=10**6, warmup=2)
    ray_params = {
        "num_workers": workers,
        "use_gpu": gpu,
        "resources_per_worker": {"GPU": 1} if gpu else {"CPU": max(1, 2 // workers)},
        "storage_path": str(folder / "ray"),
    }
    config = loop_config(params, {"preset": preset}, paths, size, seed=0, ray_params=ray_params)
    config["timing_file"] = str(folder / f"timing-{time.time_ns()}.txt")
    ray_run.fit(timed_loop, config, ray_params, f"bench-{size}-{preset}-{workers}-{time.time_ns()}")
    seconds = float(Path(config["timing_file"]).read_text())
    frames = workers * batch * rollout
    return {"size": size, "preset": preset, "workers": workers, "batch": f"{batch}x{rollout}", "s/step": seconds, "frames/s": frames / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rollout", type=int, default=6, help="frames per training sequence")
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            presets = ["cpu", "paper"] if size == 256 else ["cpu"]
            for preset in presets:
                batch = 2 if size <= 64 else (4 if args.gpu else 1)
                for workers in args.workers:
                    rows.append(measure(size, preset, workers, args.steps, batch, args.rollout, args.gpu, Path(tmp)))
                    print(rows[-1], flush=True)
    print("\n| crop | preset | Ray workers | sequences x frames/worker | s/step | frames/s |\n|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['size']} | {row['preset']} | {row['workers']} | {row['batch']} | {row['s/step']:.2f} | {row['frames/s']:.1f} |")


if __name__ == "__main__":
    main()
