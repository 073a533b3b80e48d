"""The live server: an ASGI app (FastAPI) around one loaded model.

  GET  /             the web page (static/): a photo, then an audio file or the microphone, the face talking
  WS   /v1/stream    speech in as it is spoken, frames out as they are made (protocol: serving.server.session)
  POST /v1/videos    multipart `photo` + `audio` files -> the mp4 `talking-face generate` writes
  GET  /healthz      {"status": "ok", sessions, max_sessions, lookahead_ms, model}
  GET  /metrics      Prometheus text: sessions, frames sent and dropped, frame latency

Every generation runs in a worker thread (torch releases the GIL), so the event loop keeps serving the
other clients; at most `max_sessions` streams and video requests run at once, more get 503 with the reason.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path

import torch
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from threadpoolctl import threadpool_limits

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.live import StreamingAudio
from talking_face.serving.server.metrics import ServerMetrics
from talking_face.serving.server.session import StreamSession
from talking_face.serving.server.settings import ServerSettings
from talking_face.serving.video import generate_video

STATIC = Path(__file__).parent / "static"


class SessionSlots:
    """Counts live sessions against the cap; `claim` answers None when full."""

    def __init__(self, limit: int, metrics: ServerMetrics):
        self.limit, self.metrics, self.active = limit, metrics, 0
        self.ids = itertools.count(1)

    @contextmanager
    def claim(self):
        if self.active >= self.limit:
            yield None
            return
        self.active += 1
        self.metrics.sessions.inc()
        try:
            yield f"s{next(self.ids)}"
        finally:
            self.active -= 1
            self.metrics.sessions.dec()

    def full_reason(self) -> dict:
        return {"detail": f"server busy: {self.active} of {self.limit} sessions in use, try again later"}


def create_app(model: TalkingFaceModel, settings: ServerSettings = ServerSettings(), model_name: str = "") -> FastAPI:
    metrics = ServerMetrics()
    slots = SessionSlots(settings.max_sessions, metrics)
    executor = ThreadPoolExecutor(max_workers=settings.max_sessions + 1, thread_name_prefix="generate")
    audio = model.features["audio"]
    lookahead_ms = round(1000 * StreamingAudio(audio, float(model.features["fps"]), model.audio_window).lookahead_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        previous = torch.get_num_threads()
        torch.set_num_threads(settings.threads)
        # Sessions already run in parallel threads: BLAS threads on top only oversubscribe the cores.
        with threadpool_limits(limits=1, user_api="blas"):
            yield
        torch.set_num_threads(previous)
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="talking-face live", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {
            "status": "ok", "model": model_name, "sessions": slots.active, "max_sessions": settings.max_sessions,
            "lookahead_ms": lookahead_ms, "fps": float(model.features["fps"]),
        }  # fmt: skip

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        with slots.claim() as session_id:
            if session_id is None:
                metrics.sessions_total.labels("stream", "rejected").inc()
                await websocket.send_denial_response(JSONResponse(slots.full_reason(), status_code=503))
                return
            await websocket.accept()
            session = StreamSession(websocket, model, settings, metrics, executor, session_id)
            outcome = "error"
            try:
                outcome = await session.run()
            finally:
                metrics.sessions_total.labels("stream", outcome).inc()

    @app.post("/v1/videos", response_class=Response, responses={200: {"content": {"video/mp4": {}}}})
    async def videos(request: Request) -> Response:
        """multipart/form-data with the files `photo` and `audio` -> video/mp4 (the photo's face speaking)."""
        declared = int(request.headers.get("content-length") or 0)
        if declared > 2 * settings.max_upload_bytes:
            return JSONResponse({"detail": f"upload of {declared} bytes is over the limit"}, status_code=413)
        with slots.claim() as session_id:
            if session_id is None:
                metrics.sessions_total.labels("video", "rejected").inc()
                return JSONResponse(slots.full_reason(), status_code=503)
            try:
                form = await request.form(max_files=2, max_fields=4, max_part_size=settings.max_upload_bytes)
            except MultiPartException as error:
                return JSONResponse({"detail": f"bad upload: {error.message}"}, status_code=413)
            files = {name: form.get(name) for name in ("photo", "audio")}
            missing = [name for name, value in files.items() if not isinstance(value, UploadFile)]
            if missing:
                return JSONResponse({"detail": f"missing file field(s): {', '.join(missing)}"}, status_code=422)
            with tempfile.TemporaryDirectory(prefix="talking-face-") as scratch:
                paths = {}
                for name, upload in files.items():
                    paths[name] = Path(scratch, name + Path(upload.filename or "").suffix)
                    data = await upload.read()
                    if len(data) > settings.max_upload_bytes:
                        return JSONResponse({"detail": f"{name} is over {settings.max_upload_bytes} bytes"}, 413)
                    paths[name].write_bytes(data)
                out = Path(scratch, "video.mp4")
                job = partial(
                    generate_video, model, paths["photo"], paths["audio"], out, progress=False, threads=settings.threads
                )
                try:
                    await asyncio.get_running_loop().run_in_executor(executor, job)
                except ValueError as error:  # MediaError: no face, unreadable or silent audio ...
                    metrics.sessions_total.labels("video", "error").inc()
                    message = " ".join(str(error).split()).replace(scratch + "/", "")
                    return JSONResponse({"detail": message}, status_code=422)
                metrics.sessions_total.labels("video", "completed").inc()
                return Response(out.read_bytes(), media_type="video/mp4")

    return app
