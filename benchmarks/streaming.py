"""Live streaming: N clients at once on loopback, each streaming speech in real time to `talking-face serve`.

    .venv/bin/python benchmarks/streaming.py [--clients 1 2 4] [--seconds 10] [--chunk-ms 40] [--cores 2]
        [--model bundle.pt] [--threads N] [--photo-size 512] [--json out.json]

The server runs as the real command (`talking-face serve`, its own process, on `--cores` cores); without
`--model` it serves an untrained network of the CPU default size, built from conf/base exactly as training
builds it (speed does not depend on the weights). Each client sends a `--photo-size` portrait and speech in
`--chunk-ms` chunks, each when it would have been spoken, and times every frame it gets back:

  frames/s     frames received per second of streaming, per client (real time: 25)
  latency      from sending the audio chunk that completed a frame's audio (its look-ahead: the server
               says how long) to receiving the frame; the frames after the end wait for the end instead
  lag          how far behind the speech a frame arrives (arrival - frame timestamp - stream start); it
               stays flat for a client that keeps up and grows for one that does not
  keeps up     frames/s >= 24.5 and lag grows < 0.25 s from the first to the last second
  CPU/frame    the server process's CPU time (user + system) per frame sent; on a machine shared with other
               work wall-clock figures suffer and this much less, so `fit` = how many real-time clients its
               cores would hold alone: floor(cores * 1000 / (CPU ms per frame * 25))
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import yaml

from talking_face.features.extract import resolve_params
from talking_face.models import model_config
from talking_face.sample.face import FaceLook, portrait
from talking_face.sample.speech import synthesize
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.server.client import StreamResult, stream, to_pcm16

ROOT = Path(__file__).resolve().parents[1]
RATE, FPS = 16000, 25


def default_model(path: Path) -> Path:
    """An untrained bundle of the network `make train` trains: conf/base's model and crop parameters."""
    model = yaml.safe_load((ROOT / "conf/base/parameters_model.yml").read_text())["model"]
    extract = yaml.safe_load((ROOT / "conf/base/parameters_features.yml").read_text())["features"]["extract"]
    overrides = {**(model.get("overrides") or {}), "image_size": int(extract["crop_size"])}
    config = model_config(model["preset"], model.get("variant"), overrides)
    return TalkingFaceModel.build(config, resolve_params(extract)).save(path)


def start_server(
    model: Path, port: int, cores: int, threads: int | None, max_sessions: int, *options: str
) -> subprocess.Popen:
    """`talking-face serve` on 127.0.0.1:`port`, pinned to `cores` cores, with more `options`; once it answers."""
    command = [str(Path(sys.executable).parent / "talking-face"), "serve", "--model", str(model), "--port", str(port)]
    command += ["--max-sessions", str(max_sessions), *options] + (["--threads", str(threads)] if threads else [])
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    server = subprocess.Popen(["taskset", "-c", ",".join(map(str, cpus)), *command], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"talking-face serve exited with {server.returncode}")
            time.sleep(0.5)
    server.kill()
    raise SystemExit("talking-face serve did not start within 120 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_figures(result: StreamResult, chunk_samples: int, chunk_s: float, n_samples: int) -> dict:
    """frames/s, per-frame latency and lag of one client (see the module docstring)."""
    lookahead_frames = round(result.ready["lookahead_ms"] / 1000 * FPS)
    n_chunks = -(-n_samples // chunk_samples)
    end_sent = result.started_at + n_chunks * chunk_s  # chunks go out on schedule; the end right after the last
    latencies, lags = [], []
    for frame in result.frames:
        needed = (frame.index + lookahead_frames) * (RATE // FPS)  # samples that complete this frame's audio
        chunk = (needed - 1) // chunk_samples  # the chunk holding the last of them
        sent = result.started_at + chunk * chunk_s if needed < n_samples else end_sent
        latencies.append(frame.received_at - sent)
        lags.append(frame.received_at - result.started_at - frame.timestamp_s)
    arrivals = [frame.received_at for frame in result.frames]
    span = arrivals[-1] - arrivals[0]
    fps = (len(arrivals) - 1) / span if span > 0 else 0.0
    first, last = np.median(lags[:FPS]), np.median(lags[-FPS:])
    return {
        "frames": len(result.frames),
        "fps": fps,
        "latencies": latencies,
        "lag_first_s": float(first),
        "lag_last_s": float(last),
        "keeps_up": bool(fps >= 24.5 and last - first < 0.25),
        "dropped": (result.end or {}).get("dropped"),
        "error": result.error,
    }


async def run_clients(url: str, count: int, photo: bytes, pcm: bytes, chunk_s: float) -> list[StreamResult]:
    return await asyncio.gather(*(stream(url, photo, pcm, RATE, chunk_s=chunk_s) for _ in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chunk-ms", type=float, default=40.0)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--threads", type=int, help="the server's torch threads (default: its own)")
    parser.add_argument("--gather-frames", type=int, default=2, help="the server's frames made at a time")
    parser.add_argument("--model", type=Path, help="a model bundle (default: untrained, CPU default size)")
    parser.add_argument("--photo-size", type=int, default=512)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import cv2

    speech = synthesize(args.seconds, 7).samples
    pcm = to_pcm16(speech)
    photo = cv2.imencode(".jpg", cv2.cvtColor(portrait(FaceLook(frame_size=args.photo_size)), cv2.COLOR_RGB2BGR))[1]
    chunk_s = args.chunk_ms / 1000
    chunk_samples = int(chunk_s * RATE)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or default_model(Path(scratch, "untrained_cpu_default.pt"))
        most = str(max(args.clients))
        options = ("--max-sessions-per-client", most, "--gather-frames", str(args.gather_frames))
        server = start_server(model, args.port, args.cores, args.threads, int(most), *options)
        try:
            url = f"ws://127.0.0.1:{args.port}/v1/stream"
            asyncio.run(run_clients(url, 1, photo.tobytes(), pcm[: 2 * RATE], chunk_s))  # warm-up
            for count in args.clients:
                load, cpu_before = os.getloadavg()[0], cpu_seconds(server.pid)
                results = asyncio.run(run_clients(url, count, photo.tobytes(), pcm, chunk_s))
                cpu_ms = 1000 * (cpu_seconds(server.pid) - cpu_before) / max(1, sum(len(r.frames) for r in results))
                clients = [client_figures(result, chunk_samples, chunk_s, len(speech)) for result in results]
                latencies = np.concatenate([client["latencies"] for client in clients])
                row = {
                    "clients": count,
                    "fps_per_client": [round(client["fps"], 1) for client in clients],
                    "latency_p50_ms": round(1000 * float(np.percentile(latencies, 50))),
                    "latency_p95_ms": round(1000 * float(np.percentile(latencies, 95))),
                    "lag_first_last_s": [(round(c["lag_first_s"], 2), round(c["lag_last_s"], 2)) for c in clients],
                    "keeps_up": [client["keeps_up"] for client in clients],
                    "frames": [client["frames"] for client in clients],
                    "dropped": [client["dropped"] for client in clients],
                    "errors": [client["error"] for client in clients if client["error"]],
                    "server_cpu_ms_per_frame": round(cpu_ms, 1),
                    "fit": int(args.cores * 1000 // (cpu_ms * FPS)),
                    "load_avg_1min_before": round(load, 2),
                    "lookahead_ms": results[0].ready["lookahead_ms"],
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
