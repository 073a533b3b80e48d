"""A Python client of `WS /v1/stream`, for tests, the streaming benchmark and scripts: streams 16-bit PCM in
chunks (paced in real time, or as fast as possible) and collects the frames with their arrival times."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import numpy as np
import websockets

from talking_face.serving.server.protocol import FRAME_HEADER


@dataclass
class StreamedFrame:
    index: int
    timestamp_s: float
    image: bytes  # JPEG or PNG
    received_at: float  # time.monotonic()


@dataclass
class StreamResult:
    ready: dict
    frames: list[StreamedFrame] = field(default_factory=list)
    end: dict | None = None  # the server's end message
    error: dict | None = None  # the server's error message
    close_code: int | None = None
    started_at: float = 0.0  # monotonic time of the first audio chunk


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] -> 16-bit little-endian PCM, as a microphone delivers it."""
    return (np.clip(samples, -1, 1) * 32767).round().astype("<i2").tobytes()


async def stream(
    url: str,
    photo: bytes,
    pcm: bytes,
    sample_rate: int,
    chunk_s: float = 0.04,
    realtime: bool = True,
    options: dict | None = None,
    stop_after_s: float | None = None,
    token: str | None = None,
) -> StreamResult:
    """Streams `pcm` (mono 16-bit) in chunks of `chunk_s` seconds to the server at `url` (ws://.../v1/stream),
    each chunk sent when its audio would have been spoken (`realtime`), then the end; returns what came back.
    `stop_after_s` disconnects after that much audio, without the end message; `token`: the server's access
    token, sent in the Authorization header."""
    chunk_bytes = max(2, int(chunk_s * sample_rate) * 2)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    async with websockets.connect(url, max_size=None, additional_headers=headers) as socket:
        await socket.send(json.dumps({"sample_rate": sample_rate, **(options or {})}))
        await socket.send(photo)
        reply = json.loads(await socket.recv())
        result = StreamResult(ready=reply)
        if reply.get("type") != "ready":
            result.error = reply
            await _wait_closed(socket, result)
            return result
        receiving = asyncio.create_task(_receive(socket, result))
        result.started_at = start = time.monotonic()
        for offset in range(0, len(pcm), chunk_bytes):
            if receiving.done():
                break
            if stop_after_s is not None and offset / 2 / sample_rate >= stop_after_s:
                return result
            if realtime:
                await asyncio.sleep(max(0.0, start + offset / 2 / sample_rate - time.monotonic()))
            await socket.send(pcm[offset : offset + chunk_bytes])
        if not receiving.done():
            await socket.send(json.dumps({"type": "end"}))
        await receiving
    return result


async def _receive(socket, result: StreamResult) -> None:
    try:
        async for message in socket:
            if isinstance(message, bytes):
                index, timestamp = FRAME_HEADER.unpack_from(message)
                frame = StreamedFrame(index, timestamp, message[FRAME_HEADER.size :], time.monotonic())
                result.frames.append(frame)
            else:
                reply = json.loads(message)
                if reply.get("type") == "end":
                    result.end = reply
                elif reply.get("type") == "error":
                    result.error = reply
    except websockets.ConnectionClosed:
        pass
    result.close_code = socket.close_code


async def _wait_closed(socket, result: StreamResult) -> None:
    try:
        async for _ in socket:
            pass
    except websockets.ConnectionClosed:
        pass
    result.close_code = socket.close_code
