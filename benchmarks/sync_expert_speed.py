"""How fast does the lip-sync expert train? Times its training step (InfoNCE over a batch of windows, each
with its own speech, 6 shifted speeches and the batch's other speeches) on random inputs of the real shapes.

    .venv/bin/python benchmarks/sync_expert_speed.py [--device cpu|cuda] [--batch 32 256] [--bf16] [--threads 1]

Needs only torch (runs on a GPU machine without the rest of the project's dependencies: PYTHONPATH=src).
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from talking_face.models.sync_expert import SyncExpert, SyncExpertConfig

NEGATIVES = 6


def time_steps(batch: int, device: str, bf16: bool, steps: int) -> float:
    """Seconds per training step, after warm-up."""
    config = SyncExpertConfig()
    expert = SyncExpert(config).to(device)
    optimizer = torch.optim.Adam(expert.parameters(), lr=1e-3)
    faces = torch.randn(batch, config.frames, config.face_height, config.face_width, device=device)
    mel = torch.randn(batch, 1 + NEGATIVES, config.n_mels, config.mel_steps, device=device)
    target = torch.zeros(batch, dtype=torch.long, device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if bf16 else nullcontext()

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(expert(faces, mel).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[32])
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"| device | batch | precision | ms per step | windows/s |\n|---|---:|---|---:|---:|")
    for batch in args.batch:
        for bf16 in (False, True) if args.bf16 else (False,):
            seconds = time_steps(batch, args.device, bf16, args.steps)
            print(f"| {name} | {batch} | {'bf16' if bf16 else 'fp32'} | {seconds * 1000:.1f} | {batch / seconds:,.0f} |")


if __name__ == "__main__":
    main()
