"""The live server for tests: uvicorn in a thread of the test process on a free loopback port, and the
inputs its clients send (an encoded photo, speech as 16-bit PCM)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.server import LiveServer, ServerSettings, uvicorn_config
from tests.generation_inputs import untrained_bundle
from tests.processes import free_port


def small_model(folder: Path) -> TalkingFaceModel:
    """An untrained 32-pixel model whose motion head moves (the fresh one is all zeros), so frames change; with
    the default sources, none recognised per arrival (as the speech source is), so a stream gives a file's frames."""
    overrides = {"image_size": 32, "generator": {"base_channels": 8}}
    model = TalkingFaceModel.load(untrained_bundle(folder / "small.pt", **overrides))
    torch.manual_seed(0)
    torch.nn.init.normal_(model.predictor.head.weight, std=0.05)
    return model


@contextmanager
def running_server(model: TalkingFaceModel, settings: ServerSettings, port: int | None = None):
    """Yields the server's base URL (http://127.0.0.1:port); stops it after the block."""
    port = port or free_port()
    config = uvicorn_config(model, settings, port=port)
    config.log_level = "warning"
    server = LiveServer(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the live server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def decode(image: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
