"""The live server (`talking-face serve`): speech streamed in over a WebSocket, the talking face streamed
back frame by frame, a web page to try it, and the file path (POST /v1/videos) for other languages."""

from __future__ import annotations

import uvicorn

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.server.app import create_app
from talking_face.serving.server.settings import ServerSettings

__all__ = ["LiveServer", "ServerSettings", "create_app", "uvicorn_config"]


def uvicorn_config(
    model: TalkingFaceModel, settings: ServerSettings, host: str = "127.0.0.1", port: int = 8000, model_name: str = ""
) -> uvicorn.Config:
    """The app under uvicorn, its WebSocket message limit above the app's own (so those get our error), without
    per-message compression: frames are JPEG or PNG already, and deflating them cost 2 ms of CPU a frame."""
    return uvicorn.Config(
        create_app(model, settings, model_name), host=host, port=port, ws="websockets-sansio",
        ws_max_size=settings.websocket_max_bytes, ws_per_message_deflate=False, log_level="info", lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )  # fmt: skip


class LiveServer(uvicorn.Server):
    """uvicorn's server, whose graceful stop (SIGTERM, Ctrl+C) first lets the live streams end: it stops
    accepting connections, gives the running streams up to `timeout_graceful_shutdown` to finish, closes
    the rest with 1001, then stops as uvicorn does (which gives HTTP requests the same time)."""

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:
            server.close()
        await self.config.app.state.slots.drain(self.config.timeout_graceful_shutdown)
        await super().shutdown(sockets)
