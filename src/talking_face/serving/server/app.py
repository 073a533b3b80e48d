"""The live server: an ASGI app (FastAPI) around one loaded model.

  GET  /             the web page (static/): a photo, then an audio file or the microphone, the face talking
  WS   /v1/stream    speech in as it is spoken, frames out as they are made (protocol: serving.server.session)
  POST /v1/videos    multipart `photo` + `audio` files -> the mp4 `talking-face generate` writes
  GET  /healthz      {"status": "ok", sessions, max_sessions, lookahead_ms, model, auth}
  GET  /metrics      Prometheus text: sessions, frames sent and dropped, frame latency, refused requests

With access tokens (serving.server.access) the stream, the video and the metrics routes need one; the
page, its script and /healthz hold nothing to protect and stay open, so a browser can load the page,
which then asks for the token. Every generation runs in a worker thread (torch releases the GIL), so the
event loop keeps serving the other clients; at most `max_sessions` streams and video requests run at
once and `per_client` of them for one client, more get 503 with the limit (serving.server.capacity).
"""

from __future__ import annotations

import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from functools import partial
from pathlib import Path

import cv2
import torch
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.websockets import WebSocketDisconnect
from threadpoolctl import threadpool_limits

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.live import StreamingAudio
from talking_face.serving.server.access import WRONG_ORIGIN, AccessGuard, AccessTokens, bearer_token
from talking_face.serving.server.capacity import ServerBusy, SessionSlots
from talking_face.serving.server.metrics import ServerMetrics
from talking_face.serving.server.protocol import POLICY, TRY_AGAIN, SessionError, message_field
from talking_face.serving.server.session import StreamSession, close_with, receive_message
from talking_face.serving.server.settings import ServerSettings
from talking_face.serving.video import generate_video

STATIC = Path(__file__).parent / "static"


def create_app(model: TalkingFaceModel, settings: ServerSettings = ServerSettings(), model_name: str = "") -> FastAPI:
    """The app; ValueError with one line for a token or token file that cannot be used."""
    metrics = ServerMetrics()
    slots = SessionSlots(settings.max_sessions, settings.per_client, metrics)
    guard = AccessGuard(AccessTokens(settings.token, settings.token_file), settings.allowed_origins, metrics)
    executor = ThreadPoolExecutor(max_workers=settings.max_sessions + 1, thread_name_prefix="generate")
    audio = model.features["audio"]
    lookahead_ms = round(1000 * StreamingAudio(audio, float(model.features["fps"]), model.audio_window).lookahead_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        previous, previous_cv2 = torch.get_num_threads(), cv2.getNumThreads()
        torch.set_num_threads(settings.threads)
        cv2.setNumThreads(1)  # the paste-back's OpenCV threads cost 15% more CPU than they save in time
        # Sessions already run in parallel threads: BLAS threads on top only oversubscribe the cores.
        with threadpool_limits(limits=1, user_api="blas"):
            yield
        torch.set_num_threads(previous)
        cv2.setNumThreads(previous_cv2)
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="talking-face live", lifespan=lifespan)
    app.state.slots = slots  # for the graceful stop (serving.server.LiveServer)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    with_token = [Depends(guard.http_client)]

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {
            "status": "ok", "model": model_name, "sessions": slots.active, "max_sessions": settings.max_sessions,
            "lookahead_ms": lookahead_ms, "fps": float(model.features["fps"]),
            "auth": "token" if guard.tokens.enabled else "none",
        }  # fmt: skip

    @app.get("/metrics", include_in_schema=False, dependencies=with_token)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        """Origin and header token checked at the handshake (403, 401), a browser's token in the first message
        (1008); the session slot claimed as soon as the client is known (503 before the handshake, 1013 after)."""
        if not guard.origin_allowed(websocket.headers):
            return await websocket.send_denial_response(JSONResponse({"detail": WRONG_ORIGIN}, 403))
        address = websocket.client.host if websocket.client else ""
        presented = bearer_token(websocket.headers)
        client = guard.client(presented, address) if presented is not None or not guard.tokens.enabled else None
        if presented is not None and client is None:
            return await websocket.send_denial_response(JSONResponse({"detail": guard.refusal(presented)}, 401))
        with ExitStack() as held:
            if client is not None:
                try:
                    session_id = held.enter_context(slots.claim(client))
                except ServerBusy as busy:
                    metrics.sessions_total.labels("stream", "rejected").inc()
                    return await websocket.send_denial_response(JSONResponse({"detail": str(busy)}, 503))
            await websocket.accept()
            try:
                options = (await receive_message(websocket, settings.idle_timeout_s)).get("text")
                if client is None:
                    presented = message_field(options, "token")
                    client = guard.client(presented, address)
                    if client is None:
                        raise SessionError(POLICY, guard.refusal(presented))
                    try:
                        session_id = held.enter_context(slots.claim(client))
                    except ServerBusy as busy:
                        metrics.sessions_total.labels("stream", "rejected").inc()
                        raise SessionError(TRY_AGAIN, str(busy)) from None
            except SessionError as error:
                return await close_with(websocket, error)
            except WebSocketDisconnect:
                return
            authorized = partial(guard.still_valid, presented)
            session = StreamSession(websocket, model, settings, metrics, executor, session_id, authorized)
            outcome = "error"
            try:
                with slots.stream(session):
                    outcome = await session.run(options)
            finally:
                metrics.sessions_total.labels("stream", outcome).inc()

    @app.post(
        "/v1/videos", response_class=Response, responses={200: {"content": {"video/mp4": {}}}},
        dependencies=[Depends(guard.http_origin)],
    )  # fmt: skip
    async def videos(request: Request, client: str = Depends(guard.http_client)) -> Response:
        """multipart/form-data with the files `photo` and `audio` -> video/mp4 (the photo's face speaking)."""
        declared = int(request.headers.get("content-length") or 0)
        if declared > 2 * settings.max_upload_bytes:
            return JSONResponse({"detail": f"upload of {declared} bytes is over the limit"}, status_code=413)
        try:
            with slots.claim(client):
                return await make_video(request)
        except ServerBusy as busy:
            metrics.sessions_total.labels("video", "rejected").inc()
            return JSONResponse({"detail": str(busy)}, status_code=503)

    async def make_video(request: Request) -> Response:
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
