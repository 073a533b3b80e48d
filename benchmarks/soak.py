"""Hours of load on the live server, on loopback: does anything leak?

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--clients 2] [--model bundle.pt] [--cores 2]
        [--sample-s 10] [--port 8766] [--json out.json]

Starts `talking-face serve` (the real command, pinned to `--cores` cores, with a token file of four users)
on 127.0.0.1 and, until `--minutes` have passed, keeps four kinds of client busy at once:

  good      `--clients` users streaming 4-12 s of speech in real time, one session after another; each
            must get every frame, in order, and the end (the machine's real-time capacity: 2 on 2 cores)
  leaver    streams and disconnects mid-stream, without the end, then reconnects
  garbage   a wrong token, a wrong origin, options that are not JSON, an unreadable photo, half a sample:
            each must get its refusal (401, 403) or close code (1008, 1003, 1007)
  sampler   the server's RSS (/proc) and sessions in use (/healthz) every `--sample-s` seconds

At the end it waits for the server's sessions to reach 0, then reports: sessions by kind and outcome, the
good clients' failures, RSS at the start and the end and its slope (least squares over the second half
of the samples, after the warm-up, MB per hour; flat is what no leak looks like), the server's CPU per
frame and the load average the machine had (another job's load slows the frames down, not the slope).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import websockets

from streaming import FPS, RATE, cpu_seconds, default_model, start_server
from talking_face.sample.face import FaceLook, portrait
from talking_face.sample.speech import synthesize
from talking_face.serving.server.client import stream, to_pcm16

USERS = ("good1", "good2", "good3", "good4", "leaver", "garbage")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
        return json.loads(answer.read())


class Soak:
    def __init__(self, port: int, tokens: dict[str, str], photo: bytes, speech: np.ndarray, deadline: float):
        self.url, self.port, self.tokens = f"ws://127.0.0.1:{port}/v1/stream", port, tokens
        self.photo, self.pcm, self.deadline = photo, to_pcm16(speech), deadline
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []
        self.frames = 0

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def good(self, user: str, rng: random.Random) -> None:
        while self.running():
            seconds = rng.uniform(4, 12)
            pcm = self.pcm[: 2 * int(seconds * RATE)]
            try:
                result = await stream(self.url, self.photo, pcm, RATE, token=self.tokens[user])
            except websockets.InvalidStatus as refused:
                self.failures.append(f"{user}: refused with {refused.response.status_code}")
                await asyncio.sleep(1)
                continue
            expected = -(-len(pcm) // 2 // (RATE // FPS))
            indices = [frame.index for frame in result.frames]
            if result.close_code != 1000 or indices != list(range(expected)) or (result.end or {}).get("dropped"):
                failure = f"close {result.close_code}, {len(indices)} of {expected} frames, {result.error}"
                self.failures.append(f"{user}: {failure}")
            self.counts["good sessions"] += 1
            self.frames += len(indices)

    async def leaver(self, rng: random.Random) -> None:
        while self.running():
            try:
                leave_after, token = rng.uniform(0.2, 5), self.tokens["leaver"]
                await stream(self.url, self.photo, self.pcm, RATE, stop_after_s=leave_after, token=token)
                self.counts["left mid-stream"] += 1
            except websockets.InvalidStatus as refused:  # its last session not freed yet: the server said so
                self.counts[f"leaver refused with {refused.response.status_code}"] += 1
            await asyncio.sleep(rng.uniform(1, 3))

    async def garbage(self, rng: random.Random) -> None:
        token, options = {"Authorization": f"Bearer {self.tokens['garbage']}"}, '{"sample_rate": 16000}'
        cases = [
            ("wrong token", {"additional_headers": {"Authorization": "Bearer wrong-token-0123456789"}}, [], 401),
            ("wrong origin", {"origin": "http://evil.example", "additional_headers": token}, [], 403),
            ("options not JSON", {"additional_headers": token}, ["hello"], 1003),
            ("unreadable photo", {"additional_headers": token}, [options, b"not a photo"], 1007),
            ("no token", {}, [options], 1008),
            ("half a sample", {"additional_headers": token}, [options, self.photo, b"\x00\x01\x02"], 1003),
        ]
        while self.running():
            name, connect, messages, expected = rng.choice(cases)
            got = await self.answer_to(connect, messages)
            if got != expected:
                self.failures.append(f"garbage {name}: {got}, not {expected}")
            self.counts[f"garbage: {name}"] += 1
            await asyncio.sleep(rng.uniform(0.05, 0.5))

    async def answer_to(self, connect: dict, messages: list) -> int | None:
        """The refused handshake's status, or the close code after sending `messages`."""
        try:
            async with websockets.connect(self.url, max_size=None, **connect) as socket:
                try:
                    for message in messages:
                        await socket.send(message)
                    async for _ in socket:
                        pass
                except websockets.ConnectionClosed:
                    pass
                return socket.close_code
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    async def sample(self, pid: int, every_s: float, samples: list) -> None:
        start = time.monotonic()
        while self.running():
            sessions = (await asyncio.to_thread(healthz, self.port))["sessions"]
            samples.append((time.monotonic() - start, rss_mb(pid), sessions))
            await asyncio.sleep(every_s)


def slope_mb_per_hour(samples: list) -> float:
    """RSS growth over the second half of the run (the first holds the warm-up: worker threads, caches)."""
    steady = samples[len(samples) // 2 :]
    times, rss = np.array([s[0] for s in steady]), np.array([s[1] for s in steady])
    return float(np.polyfit(times / 3600, rss, 1)[0]) if len(steady) > 2 else float("nan")


def metrics_text(port: int, token: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=2, choices=range(1, 5), help="good real-time clients")
    parser.add_argument("--model", type=Path, help="a model bundle (default: untrained, CPU default size)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import cv2

    photo = cv2.imencode(".jpg", cv2.cvtColor(portrait(FaceLook(frame_size=512)), cv2.COLOR_RGB2BGR))[1].tobytes()
    speech = synthesize(12.0, 7).samples
    rng = random.Random(0)
    tokens = {user: f"{user}-soak-token-{rng.getrandbits(64):016x}" for user in USERS}
    with tempfile.TemporaryDirectory() as scratch:
        token_file = Path(scratch, "tokens")
        token_file.write_text("".join(f"{user} {token}\n" for user, token in tokens.items()))
        model = args.model or default_model(Path(scratch, "untrained_cpu_default.pt"))
        sessions = args.clients + 4  # the leaver's and the garbage sender's sessions overlap as they are freed
        server = start_server(model, args.port, args.cores, None, sessions, "--token-file", str(token_file))
        try:
            soak = Soak(args.port, tokens, photo, speech, time.monotonic() + 60 * args.minutes)
            samples: list = []
            load_before, cpu_before = os.getloadavg()[0], cpu_seconds(server.pid)

            async def everyone():
                await asyncio.gather(
                    *(soak.good(f"good{i + 1}", random.Random(i)) for i in range(args.clients)),
                    soak.leaver(random.Random(10)), soak.garbage(random.Random(11)),
                    soak.sample(server.pid, args.sample_s, samples),
                )  # fmt: skip

            asyncio.run(everyone())
            cpu_s = cpu_seconds(server.pid) - cpu_before
            deadline = time.monotonic() + 30
            while healthz(args.port)["sessions"] and time.monotonic() < deadline:
                time.sleep(0.2)
            counted = ("talking_face_sessions_total", "talking_face_access_denied_total")
            lines = metrics_text(args.port, tokens["good1"]).splitlines()
            outcomes = [line for line in lines if line.startswith(counted)]
            report = {
                "minutes": args.minutes, "good_clients": args.clients, "model": str(args.model or "untrained"),
                "client_counts": dict(soak.counts), "good_failures": soak.failures[:20],
                "good_failure_count": len(soak.failures), "sessions_left": healthz(args.port)["sessions"],
                "server_outcomes": outcomes, "rss_first_mb": round(samples[0][1], 1),
                "rss_last_mb": round(samples[-1][1], 1), "rss_max_mb": round(max(s[1] for s in samples), 1),
                "rss_slope_mb_per_hour": round(slope_mb_per_hour(samples), 2),
                "server_cpu_ms_per_good_frame": round(1000 * cpu_s / max(1, soak.frames), 1),
                "good_frames": soak.frames, "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "samples": [(round(t), round(rss, 1), n) for t, rss, n in samples],
            }  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(json.dumps({key: value for key, value in report.items() if key != "samples"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
