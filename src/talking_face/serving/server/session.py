"""One client of `WS /v1/stream`: its photo, its audio as it arrives, its frames as they are made.

The protocol: serving.server.protocol.

Three tasks per session: the receiver decodes and resamples audio (cheap, on the event loop), the producer
steps the model in a worker thread, the sender writes frames from a bounded queue. A client reading slower
than frames are made fills the queue; then the oldest queued frame is dropped ("drop", live viewing) or the
producer waits ("block", every frame kept, audio piling up server-side up to the session limit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from concurrent.futures import Executor
from typing import Callable, Iterator

import cv2
import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from talking_face.media.errors import MediaError
from talking_face.serving.animate import GeneratedFrame
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.live import LiveAnimation, PcmDecoder
from talking_face.serving.photo import PasteBack, decode_image, face_photo
from talking_face.serving.server.metrics import ServerMetrics
from talking_face.serving.server.protocol import (
    FORMATS, FRAME_HEADER, GOING_AWAY, INVALID, POLICY, SERVER_FAULT, TOO_BIG, UNSUPPORTED, SessionError,
    StreamOptions, encode_frame, message_field,
)  # fmt: skip
from talking_face.serving.server.settings import ServerSettings

logger = logging.getLogger(__name__)


async def receive_message(websocket: WebSocket, timeout_s: float) -> dict:
    """The client's next message; SessionError after `timeout_s` without one, WebSocketDisconnect when it left."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout_s)
    except TimeoutError:
        raise SessionError(POLICY, f"nothing received for {timeout_s:g} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


async def close_with(websocket: WebSocket, error: SessionError) -> None:
    """The error message, then the close with its code."""
    try:
        await websocket.send_json({"type": "error", "code": error.code, "message": error.message})
        await websocket.close(error.code, reason=error.message[:120])
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client is gone already


def fit_photo(image: np.ndarray, max_side: int) -> np.ndarray:
    """The photo scaled down so its longer side is at most `max_side` (frames stay cheap to compose and send)."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


class StreamSession:
    """Runs one client's session on `websocket` (already accepted, its first message read) until the end, an
    error, a disconnect or `stop()`; `authorized()` is asked on every message (a revoked token ends it)."""

    def __init__(
        self,
        websocket: WebSocket,
        model: TalkingFaceModel,
        settings: ServerSettings,
        metrics: ServerMetrics,
        executor: Executor,
        session_id: str,
        authorized: Callable[[], bool],
    ):
        self.websocket, self.model, self.settings, self.metrics = websocket, model, settings, metrics
        self.executor, self.session_id, self.authorized = executor, session_id, authorized
        self.fps = float(model.features["fps"])
        self.rate = int(model.features["audio"]["sample_rate"])
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=settings.queue_frames)
        self.pending: list[np.ndarray] = []  # decoded audio not yet given to the model
        self.audio_arrived = asyncio.Event()
        self.arrivals: list[tuple[int, float]] = []  # (model-rate samples received so far, arrival time)
        self.received = 0
        self.silent_samples = 0
        self.ended_at: float | None = None
        self.made = self.sent = self.dropped = 0
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        """Ends the session now with 1001 (the server is stopping)."""
        self.stopping.set()

    async def run(self, options_text: str | None) -> str:
        """The session's outcome: "completed", "disconnected" or "error"; `options_text` is its first message."""
        outcome, error = "completed", None
        try:
            async with asyncio.TaskGroup() as tasks:
                stopper = tasks.create_task(self._until_stopped())
                await self._start(options_text)
                tasks.create_task(self._receive())
                tasks.create_task(self._produce())
                tasks.create_task(self._send(stopper))
        except* WebSocketDisconnect:
            outcome = "disconnected"
        except* SessionError as group:
            outcome, error = "error", group.exceptions[0]
        except* Exception as group:  # a fault of ours: tell the client, keep serving the others
            fault = group.exceptions[0]
            logger.error("session %s failed", self.session_id, exc_info=fault)
            outcome, error = "error", SessionError(SERVER_FAULT, f"server error ({fault.__class__.__name__})")
        if error is not None:
            await close_with(self.websocket, error)
        elif outcome == "completed":
            await self.websocket.send_json({"type": "end", "frames": self.sent, "dropped": self.dropped})
            await self.websocket.close(1000)
        return outcome

    async def _until_stopped(self) -> None:
        await self.stopping.wait()
        raise SessionError(GOING_AWAY, "the server is shutting down")

    async def _message(self) -> dict:
        return await receive_message(self.websocket, self.settings.idle_timeout_s)

    async def _start(self, options_text: str | None) -> None:
        self.options = StreamOptions.parse(options_text)
        try:
            self.decoder = PcmDecoder(self.options.sample_rate, self.options.channels, self.rate)
        except ValueError as error:
            raise SessionError(UNSUPPORTED, str(error)) from None
        data = (await self._message()).get("bytes")
        if data is None:
            raise SessionError(UNSUPPORTED, "the second message must be the photo file (binary)")
        if len(data) > self.settings.max_upload_bytes:
            limit = self.settings.max_upload_bytes
            raise SessionError(TOO_BIG, f"photo of {len(data)} bytes is over the {limit} limit")
        loop = asyncio.get_running_loop()
        try:
            photo = await loop.run_in_executor(self.executor, self._face, data)
        except MediaError as error:
            raise SessionError(INVALID, str(error)) from None
        self.compose = PasteBack(photo) if self.options.paste_back else None
        options, max_seconds = self.options, self.settings.max_session_s
        self.live = LiveAnimation(
            self.model, photo.crop, options.blink_rate, max_seconds=max_seconds, mouth_strength=options.mouth_strength,
            gather_frames=self.settings.gather_frames,
        )
        height, width = (photo.image if self.options.paste_back else photo.crop).shape[:2]
        await self.websocket.send_json(
            {
                "type": "ready", "session": self.session_id, "fps": self.fps, "width": width, "height": height,
                "lookahead_ms": round(1000 * self.live.audio.lookahead_s), "format": self.options.format,
            }
        )  # fmt: skip

    def _face(self, data: bytes):
        image = fit_photo(decode_image(data, "photo"), self.settings.max_photo_side)
        return face_photo(image, self.model.image_size, float(self.model.features["crop_margin"]), "photo")

    async def _receive(self) -> None:
        settings = self.settings
        while True:
            message = await self._message()
            if not self.authorized():
                raise SessionError(POLICY, "the access token was revoked")
            if message.get("text") is not None:
                if message_field(message["text"], "type") != "end":
                    raise SessionError(UNSUPPORTED, 'expected audio (binary) or {"type": "end"}')
                if self.received == 0:
                    raise SessionError(INVALID, "the audio ended before any audio arrived")
                self._add_audio(self.decoder.flush())
                self.ended_at = time.monotonic()
                self.audio_arrived.set()
                return
            data = message["bytes"]
            if len(data) > settings.max_chunk_bytes:
                limit = settings.max_chunk_bytes
                raise SessionError(TOO_BIG, f"audio chunk of {len(data)} bytes is over the {limit} limit")
            try:
                samples = self.decoder.decode(data)
            except ValueError as error:
                raise SessionError(UNSUPPORTED, str(error)) from None
            self._add_audio(samples)

    def _add_audio(self, samples: np.ndarray) -> None:
        settings = self.settings
        self.received += len(samples)
        if self.received > settings.max_session_s * self.rate:
            raise SessionError(POLICY, f"session over the {settings.max_session_s:g} s limit of audio")
        loud = len(samples) and float(np.max(np.abs(samples))) > 10 ** (settings.silence_dbfs / 20)
        self.silent_samples = 0 if loud else self.silent_samples + len(samples)
        if self.silent_samples > settings.max_silence_s * self.rate:
            level, limit = settings.silence_dbfs, settings.max_silence_s
            raise SessionError(POLICY, f"audio silent (below {level:g} dBFS) for {limit:g} s")
        self.arrivals.append((self.received, time.monotonic()))
        self.pending.append(samples)
        self.audio_arrived.set()

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.audio_arrived.wait()
            self.audio_arrived.clear()
            samples = np.concatenate(self.pending) if self.pending else np.zeros(0, np.float32)
            self.pending.clear()
            ending = self.ended_at is not None
            frames = self._frames(samples, ending)
            while (item := await loop.run_in_executor(self.executor, self._next_frame, frames)) is not None:
                if self.settings.backpressure == "block":
                    await self.queue.put(item)
                else:
                    if self.queue.full():
                        self.queue.get_nowait()
                        self.dropped += 1
                        self.metrics.frames_dropped.inc()
                    self.queue.put_nowait(item)
            if ending:
                await self.queue.put(None)
                return

    def _frames(self, samples: np.ndarray, ending: bool) -> Iterator[GeneratedFrame]:
        yield from self.live.push(samples)
        if ending:
            yield from self.live.finish()

    def _next_frame(self, frames: Iterator[GeneratedFrame]) -> tuple[int, bytes, float] | None:
        """The next frame encoded, with its header, and when the audio it waited for arrived (worker thread)."""
        frame = next(frames, None)
        if frame is None:
            return None
        index, self.made = self.made, self.made + 1
        image = self.compose(frame) if self.compose else frame.image
        data = FRAME_HEADER.pack(index, index / self.fps) + encode_frame(image, FORMATS[self.options.format])
        return index, data, self._arrival_of(index)

    def _arrival_of(self, index: int) -> float:
        """When the audio chunk that completed frame `index`'s audio arrived (or the end, for the last frames)."""
        needed = self.live.audio.frame_ready_at(index)
        position = bisect_left(self.arrivals, needed, key=lambda arrival: arrival[0])
        if position < len(self.arrivals):
            return self.arrivals[position][1]
        return self.ended_at if self.ended_at is not None else time.monotonic()

    async def _send(self, stopper: asyncio.Task) -> None:
        while (item := await self.queue.get()) is not None:
            index, data, arrived = item
            await self.websocket.send_bytes(data)
            self.sent += 1
            self.metrics.frames_sent.inc()
            self.metrics.frame_latency.observe(time.monotonic() - arrived)
        stopper.cancel()  # every frame is sent: nothing left to stop
