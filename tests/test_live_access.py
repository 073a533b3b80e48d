"""Who may use the live server: access tokens (a header, or a browser's first message; a token file whose
lines can be revoked), origins, the per-client session limit, the refusal to listen beyond loopback
without a token, and the graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import requests
import websockets
from click.testing import CliRunner

from talking_face.cli import main
from talking_face.serving.server import ServerSettings
from talking_face.serving.server.client import stream, to_pcm16
from talking_face.serving.server.protocol import FRAME_HEADER
from talking_face.serving.video import torch_threads
from tests.generation_inputs import photo, speech
from tests.live_server import jpeg, running_server, small_model
from tests.processes import free_port, stop_group, wait_until_answers

TOKEN = "team-token-0123456789"
ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789ab"
FACE = jpeg(photo(256))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("access-model"))


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/stream"


async def first_message_session(url: str, options: dict, audio_s: float = 1.0) -> tuple[list, int | None]:
    """A browser's way: options (with the token, if any) as the first message, the photo, speech, the end;
    returns the text messages the server sent and its close code."""
    async with websockets.connect(url, max_size=None) as socket:
        await socket.send(json.dumps({"sample_rate": 16000, **options}))
        texts = []
        try:
            await socket.send(FACE)
            await socket.send(to_pcm16(speech(audio_s)))
            await socket.send(json.dumps({"type": "end"}))
            async for message in socket:
                if isinstance(message, str):
                    texts.append(json.loads(message))
        except websockets.ConnectionClosed:
            pass
        return texts, socket.close_code


async def handshake_status(url: str, **connect) -> int:
    """The HTTP status of a refused WebSocket handshake (101 when it was accepted)."""
    try:
        async with websockets.connect(url, **connect):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


def metric(base: str, line_start: str, token: str) -> float:
    text = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(line_start)))


def test_without_the_token_the_server_answers_401_or_closes_the_stream_with_1008(model):
    settings = ServerSettings(max_sessions=4, threads=1, token=TOKEN)
    with torch_threads(1), running_server(model, settings) as base:
        assert requests.get(base + "/healthz", timeout=10).json()["auth"] == "token"  # open, for probes
        assert requests.get(base + "/", timeout=10).status_code == 200  # the page, which then asks for the token
        assert requests.get(base + "/metrics", timeout=10).status_code == 401
        bad = {"Authorization": "Bearer not-the-token-at-all"}
        assert requests.get(base + "/metrics", headers=bad, timeout=10).status_code == 401
        files = {"photo": FACE, "audio": b"RIFF"}
        refused = requests.post(base + "/v1/videos", files=files, timeout=10)
        assert refused.status_code == 401 and "access token is needed" in refused.json()["detail"]
        assert asyncio.run(handshake_status(ws_url(base), additional_headers=bad)) == 401

        texts, code = asyncio.run(first_message_session(ws_url(base), {}))
        assert code == 1008 and texts == [{"type": "error", "code": 1008, "message": texts[0]["message"]}]
        assert "access token is needed" in texts[0]["message"]
        texts, code = asyncio.run(first_message_session(ws_url(base), {"token": "wrong-token-0123456789"}))
        assert code == 1008 and "not valid" in texts[0]["message"]

        # The right token: in the header (the Python client), or in the first message (the page).
        result = asyncio.run(stream(ws_url(base), FACE, to_pcm16(speech(1.0)), 16000, realtime=False, token=TOKEN))
        assert result.close_code == 1000 and len(result.frames) == 25
        texts, code = asyncio.run(first_message_session(ws_url(base), {"token": TOKEN}))
        assert code == 1000 and texts[-1] == {"type": "end", "frames": 25, "dropped": 0}

        denied = 'talking_face_access_denied_total{reason="%s"}'
        assert metric(base, denied % "no_token", TOKEN) == 3  # /metrics, the video, the stream's first message
        assert metric(base, denied % "wrong_token", TOKEN) == 3


def test_a_browser_on_another_origin_gets_403(model):
    settings = ServerSettings(max_sessions=4, threads=1, allowed_origins=("https://app.example",))
    with torch_threads(1), running_server(model, settings) as base:
        url = ws_url(base)
        assert asyncio.run(handshake_status(url, origin="http://evil.example")) == 403
        assert asyncio.run(handshake_status(url, origin=base)) == 101  # the page's own
        assert asyncio.run(handshake_status(url, origin="https://app.example")) == 101  # configured
        assert asyncio.run(handshake_status(url)) == 101  # not a browser: no Origin
        evil = requests.post(base + "/v1/videos", files={"photo": FACE}, headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403 and "origin" in evil.json()["detail"]
        assert requests.post(base + "/v1/videos", files={"photo": FACE}, headers={"Origin": base}).status_code == 422
        # A site whose name was made to resolve to 127.0.0.1 (DNS rebinding) is not the page's own origin.
        port = base.rsplit(":", 1)[1]
        rebound = {"Origin": f"http://evil.example:{port}", "Host": f"evil.example:{port}"}
        assert requests.post(base + "/v1/videos", files={"photo": FACE}, headers=rebound).status_code == 403
        assert metric(base, 'talking_face_access_denied_total{reason="origin"}', "") == 3


def test_a_revoked_token_is_refused_at_once_and_each_user_gets_a_share_of_the_sessions(model, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# user token\nalice {ALICE}\nbob {BOB}\n")
    settings = ServerSettings(max_sessions=2, threads=1, token_file=tokens)
    pcm = to_pcm16(speech(1.0))
    alice = {"Authorization": f"Bearer {ALICE}"}
    with torch_threads(1), running_server(model, settings) as base:

        async def alice_holds_one_then_is_revoked():
            async with websockets.connect(ws_url(base), additional_headers=alice) as held:
                await held.send(json.dumps({"sample_rate": 16000}))
                await held.send(FACE)
                assert json.loads(await held.recv())["type"] == "ready"
                second = await asyncio.to_thread(
                    requests.post, base + "/v1/videos", files={"photo": FACE}, headers=alice, timeout=10
                )
                browser_second = await first_message_session(ws_url(base), {"token": ALICE})
                bob = await stream(ws_url(base), FACE, pcm, 16000, realtime=False, token=BOB)
                tokens.write_text(f"bob {BOB}\n")  # alice revoked: her running stream ends at her next message
                await held.send(to_pcm16(speech(0.2)))
                _, replies, held_code = await collect(held)
                return second, browser_second, bob, replies, held_code

        second, (texts, code), bob, replies, held_code = asyncio.run(alice_holds_one_then_is_revoked())
        assert second.status_code == 503 and second.json()["detail"].startswith("per-client limit: ")
        assert code == 1013 and texts[0]["message"].startswith("per-client limit: ")
        assert bob.close_code == 1000 and len(bob.frames) == 25  # the other user's share is free
        assert held_code == 1008 and replies == [
            {"type": "error", "code": 1008, "message": "the access token was revoked"}
        ]
        assert asyncio.run(handshake_status(ws_url(base), additional_headers=alice)) == 401
        assert requests.get(base + "/metrics", headers=alice).status_code == 401
        assert requests.get(base + "/metrics", headers={"Authorization": f"Bearer {BOB}"}).status_code == 200


def test_serving_beyond_loopback_without_a_token_is_refused():
    arguments = ["serve", "--host", "0.0.0.0", "--model", "missing.pt"]
    refused = CliRunner().invoke(main, arguments, env={"TALKING_FACE_TOKEN": ""})
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        "Error: refusing to serve on 0.0.0.0 without an access token: set --token, TALKING_FACE_TOKEN or "
        "--token-file (or --insecure-no-token when a proxy with its own authentication is in front)"
    ]
    short = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--token", "short"])
    assert short.exit_code == 1 and "needs at least 16 characters" in short.output


async def open_stream(url: str) -> tuple:
    """A session with the token in its header, past "ready"; and a task collecting what comes back."""
    socket = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
    await socket.send(json.dumps({"sample_rate": 16000}))
    await socket.send(FACE)
    assert json.loads(await socket.recv())["type"] == "ready"
    return socket, asyncio.create_task(collect(socket))


async def collect(socket) -> tuple[list[int], list[dict], int | None]:
    """Frame indices and text messages until the server closes, and its close code."""
    indices, texts = [], []
    try:
        async for message in socket:
            if isinstance(message, bytes):
                indices.append(FRAME_HEADER.unpack_from(message)[0])
            else:
                texts.append(json.loads(message))
    except websockets.ConnectionClosed:
        pass
    return indices, texts, socket.close_code


def test_sigterm_lets_running_streams_finish_closes_the_rest_with_1001_and_exits_0(model, tmp_path):
    model_file = model.save(tmp_path / "model.pt")
    port, log = free_port(), tmp_path / "server.log"
    command = [str(os.path.dirname(sys.executable) + "/talking-face"), "serve", "--model", str(model_file)]
    command += ["--port", str(port), "--shutdown-timeout", "15", "--threads", "1"]
    environment = {**os.environ, "TALKING_FACE_TOKEN": TOKEN}
    with log.open("w") as output:
        server = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/healthz", server, log, 120, "talking-face serve")
        url = f"ws://127.0.0.1:{port}/v1/stream"

        async def stop_while_streaming():
            (finishing, finished), (lingering, lingered) = await open_stream(url), await open_stream(url)
            audio = to_pcm16(speech(2.0))
            await finishing.send(audio[: len(audio) // 2])
            await lingering.send(to_pcm16(speech(0.5)))  # and never the end
            server.send_signal(signal.SIGTERM)
            refused = await asyncio.to_thread(connections_refused, port)
            await finishing.send(audio[len(audio) // 2 :])  # a running stream goes on
            await finishing.send(json.dumps({"type": "end"}))
            return await finished, await lingered, refused

        (indices, texts, code), (_, cut_texts, cut_code), refused = asyncio.run(stop_while_streaming())
        assert refused  # new connections
        assert code == 1000 and indices == list(range(50)) and texts == [{"type": "end", "frames": 50, "dropped": 0}]
        assert cut_code == 1001 and cut_texts == [
            {"type": "error", "code": 1001, "message": "the server is shutting down"}
        ]
        assert server.wait(timeout=60) == 0
    finally:
        stop_group(server)
    assert TOKEN not in log.read_text()


def wait_for_sessions(port: int, count: int, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())["sessions"] < count:
        assert time.monotonic() < deadline, f"{count} sessions did not start"
        time.sleep(0.05)


def connections_refused(port: int, within_s: float = 10.0) -> bool:
    """Whether new connections are refused (the listener closed) within `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except OSError:
            return True
        time.sleep(0.05)
    return False
