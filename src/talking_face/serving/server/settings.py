"""The live server's limits, one place for the CLI's options and the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from talking_face.serving.video import SILENCE_DBFS, default_threads

BACKPRESSURE = ("drop", "block")


@dataclass(frozen=True)
class ServerSettings:
    max_sessions: int = 4  # live streams and video requests at once; more are answered 503
    max_sessions_per_client: int | None = None  # of those, one client's (None: half, at least 1)
    queue_frames: int = 25  # frames waiting for a slow client (1 s at 25 fps)
    backpressure: str = "drop"  # a full queue drops its oldest frame ("drop") or pauses the model ("block")
    max_upload_bytes: int = 20 * 2**20  # a photo, or one file of POST /v1/videos
    max_chunk_bytes: int = 2**18  # one audio message (256 KiB: 2.7 s of 48 kHz stereo)
    max_session_s: float = 600.0  # seconds of audio per session
    max_silence_s: float = 30.0  # seconds of silent audio in a row before a session is ended
    silence_dbfs: float = SILENCE_DBFS
    idle_timeout_s: float = 30.0  # seconds without a message before a session is ended
    max_photo_side: int = 720  # streamed photos are scaled down to this (frames stay cheap to send)
    threads: int = default_threads()  # torch intra-op threads
    gather_frames: int = 2  # frames a session makes at a time: 15% less CPU a frame, up to 40 ms more latency
    token: str | None = field(default=None, repr=False)  # the shared access token
    token_file: Path | None = None  # `<user> <token>` lines, one per user
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed besides the page's own
    shutdown_timeout_s: float = 30.0  # how long a graceful stop waits for running streams and requests

    def __post_init__(self):
        if self.backpressure not in BACKPRESSURE:
            raise ValueError(f"backpressure must be one of {', '.join(BACKPRESSURE)}, not {self.backpressure!r}")
        if min(self.max_sessions, self.queue_frames, self.max_sessions_per_client or 1, self.gather_frames) < 1:
            raise ValueError("max_sessions, max_sessions_per_client, queue_frames and gather_frames must be at least 1")

    @property
    def per_client(self) -> int:
        return self.max_sessions_per_client or max(1, self.max_sessions // 2)

    @property
    def websocket_max_bytes(self) -> int:
        """uvicorn's own message limit: above both of ours, so an oversized message gets our error message."""
        return 2 * max(self.max_upload_bytes, self.max_chunk_bytes)
