"""Generation speed: real-time factor (seconds of video per wall-clock second) and frames per second.

    .venv/bin/python benchmarks/generation.py [--configs cpu:64 cpu:256 paper:256] [--threads 1 2]
        [--seconds 4] [--device cpu|cuda] [--bf16] [--model bundle.pt] [--end-to-end] [--json out.json]

For each network (preset:image_size, randomly initialised: speed does not depend on the weights, but for
a composite head's motion field, given non-zero weights so that paste-back warps the photo; or a trained
`--model` bundle) and torch thread count: `serving.animate` over speech of `--seconds` (fewer at
256x256 on CPU, where a frame takes long), after a warm-up. "model" rows time frames coming out of the
generator; the "end to end" row (`--end-to-end`, first config) times `serving.video.generate_video` on a
512x512 photo: audio decode, face detection, generation, paste-back and H.264 encoding.

CPU time per frame is printed beside wall time: on a machine shared with other work, wall time suffers
and CPU time much less, so the two together say what the hardware alone would do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np
import soundfile
import torch

from talking_face.features.extract import resolve_params
from talking_face.models import model_config
from talking_face.sample.face import FaceLook, portrait
from talking_face.sample.speech import synthesize
from talking_face.serving.animate import animate
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.video import generate_video, torch_threads

FPS = 25


def build(config: str, bundle: Path | None) -> TalkingFaceModel:
    if bundle is not None:
        return TalkingFaceModel.load(bundle)
    preset, size = config.split(":")
    network = model_config(preset, overrides={"image_size": int(size)})
    model = TalkingFaceModel.build(network, resolve_params({"crop_size": int(size)})).eval()
    if network.generator.output == "composite":
        # A fresh motion head is all zeros and paste-back skips the warp then: time it as a trained one runs.
        torch.nn.init.normal_(model.generator.composite_head.to_motion.weight, std=0.05)
    return model


def time_frames(model: TalkingFaceModel, audio: np.ndarray, warmup: int, autocast) -> dict:
    """Wall and CPU seconds for the frames after the first `warmup` ones (set-up and first calls excluded)."""
    crop = np.random.default_rng(0).integers(0, 256, (model.image_size, model.image_size, 3), dtype=np.uint8)
    frames, start, cpu_start = 0, None, None
    with autocast:
        for index, _ in enumerate(animate(model, crop, audio)):
            if index + 1 == warmup:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                start, cpu_start = time.perf_counter(), time.process_time()
            elif index >= warmup:
                frames += 1
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"frames": frames, "fps": frames / wall, "rtf": frames / wall / FPS, "cpu_ms_per_frame": 1000 * cpu / frames}


def end_to_end(model: TalkingFaceModel, seconds: float, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        image, audio = Path(folder, "face.jpg"), Path(folder, "speech.wav")
        cv2.imwrite(str(image), cv2.cvtColor(portrait(FaceLook(frame_size=512)), cv2.COLOR_RGB2BGR))
        soundfile.write(audio, synthesize(seconds, 5).samples, 16000)
        start, cpu_start = time.perf_counter(), time.process_time()
        video = generate_video(model, image, audio, Path(folder, "out.mp4"), progress=False, threads=threads)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    frames = video.frames
    return {"frames": frames, "fps": frames / wall, "rtf": seconds / wall, "cpu_ms_per_frame": 1000 * cpu / frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["cpu:64", "cpu:256", "paper:256"], help="preset:image_size")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=4.0, help="speech per run (a quarter of it at >=256 on CPU)")
    parser.add_argument("--warmup", type=int, default=5, help="frames not timed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (GPU)")
    parser.add_argument("--model", type=Path, help="a trained bundle instead of the configs")
    parser.add_argument("--end-to-end", action="store_true", help="also time generate_video with the first config")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    autocast = torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16) if args.bf16 else nullcontext()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}, {args.device}")
    rows = []
    for index, config in enumerate([str(args.model)] if args.model else args.configs):
        model = build(config, args.model).to(args.device)
        seconds = args.seconds / 4 if args.device == "cpu" and model.image_size >= 256 else args.seconds
        audio = synthesize(seconds + args.warmup / FPS, 3).samples
        network = {"config": config, "size": model.image_size}
        for threads in args.threads:
            with torch_threads(threads):
                timing = time_frames(model, audio, args.warmup, autocast)
            rows.append({"what": "model", **network, "threads": threads, **timing})
            print(f"  {config} threads={threads}: {rows[-1]['fps']:.1f} frames/s", file=sys.stderr)
        if args.end_to_end and index == 0:
            for threads in args.threads:
                timing = end_to_end(model, args.seconds, threads)
                rows.append({"what": "end to end", **network, "threads": threads, **timing})
    header = ("what", "network", "size", "threads", "frames", "frames/s", "RTF", "CPU ms/frame")
    print("\n{:<11} {:<10} {:>5} {:>7} {:>6} {:>9} {:>6} {:>13}".format(*header))
    for row in rows:
        print(
            f"{row['what']:<11} {row['config']:<10} {row['size']:>5} {row['threads']:>7} {row['frames']:>6} "
            f"{row['fps']:>9.1f} {row['rtf']:>6.2f} {row['cpu_ms_per_frame']:>13.1f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"device": args.device, "bf16": args.bf16, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
