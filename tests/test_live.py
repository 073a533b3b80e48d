"""Live generation and the live server: speech streamed in pieces gives `generate`'s frames, over the
socket too; several clients at once, disconnects, bad input with its close code, the session cap, the
file endpoint, health and metrics."""

from __future__ import annotations

import asyncio
import copy
import gc
import io
import json
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import requests
import torch
import websockets

from talking_face.features.audio import AUDIO_DEFAULTS
from talking_face.features.phonemes import speech_visemes
from talking_face.media.audio import read_audio
from talking_face.serving.animate import animate, frame_count
from talking_face.serving.live import LiveAnimation, PcmDecoder, StreamingAudio
from talking_face.serving.photo import face_photo, find_face, read_image
from talking_face.serving.server import ServerSettings
from talking_face.serving.server.client import stream, to_pcm16
from talking_face.serving.server.protocol import FRAME_HEADER
from talking_face.serving.server.session import StreamSession
from talking_face.serving.video import generate_video, read_speech, torch_threads
from tests.generation_inputs import photo, speech, untrained_bundle, write_audio, write_image
from tests.live_server import decode, jpeg, running_server, small_model
from tests.readme_commands import readme_line, readme_python_block, running_command, trained_project

LIMITS = dict(max_chunk_bytes=16384, max_silence_s=1.0, max_session_s=5.0, idle_timeout_s=2.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("live-model"))


@pytest.fixture(scope="module")
def server(model):
    with torch_threads(1), running_server(model, ServerSettings(max_sessions=4, threads=1, **LIMITS)) as url:
        yield url


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A photo file and a 3 s speech file (44.1 kHz 16-bit wav), and the wav's own samples as PCM."""
    folder = tmp_path_factory.mktemp("live-inputs")
    image = write_image(folder / "face.png", photo(256))
    audio = write_audio(folder / "speech.wav", speech(3.0))
    return image, audio, file_pcm(audio)


def file_pcm(path: Path) -> bytes:
    """The 16-bit samples a mono audio file holds, as sent by a client."""
    with av.open(str(path)) as container:
        return b"".join(frame.to_ndarray().astype("<i2").tobytes() for frame in container.decode(audio=0))


def file_faces(model, image: Path, audio: Path) -> list[np.ndarray]:
    """The face crops `generate` makes from these files, before pasting them back and its lossy encoder."""
    face = face_photo(read_image(image), model.image_size, float(model.features["crop_margin"]), image)
    with torch_threads(1):
        return [frame.image for frame in animate(model, face.crop, read_speech(audio, 16000))]


CROPS = {"format": "png", "paste_back": False}  # the generated faces themselves, lossless


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/stream"


def assert_close(expected: np.ndarray, actual: np.ndarray, levels: int = 1) -> None:
    # The stream batches frames as their audio arrives, the file in larger chunks: floats round differently.
    assert expected.shape == actual.shape
    assert np.abs(expected.astype(int) - actual.astype(int)).max() <= levels


def test_speech_in_any_pieces_gives_the_file_frames(model):
    crop = face_photo(photo(256), model.image_size, float(model.features["crop_margin"])).crop
    audio = speech(2.0, seed=5)
    with torch_threads(1):
        expected = [frame.image for frame in animate(model, crop, audio)]
        live, frames, position = LiveAnimation(model, crop), [], 0
        for size in np.random.default_rng(0).integers(1, 4000, 200):  # from a sample to 6 frames' worth
            frames += [frame.image for frame in live.push(audio[position : position + size])]
            position += size
        frames += [frame.image for frame in live.finish()]
    assert len(frames) == len(expected) == 50
    for want, got in zip(expected, frames):
        assert_close(want, got)
    assert len({frame.tobytes() for frame in frames}) > 1


def test_gathered_frames_come_two_at_a_time_and_are_the_file_frames(model):
    crop = face_photo(photo(256), model.image_size, float(model.features["crop_margin"])).crop
    audio = speech(1.0, seed=5)
    with torch_threads(1):
        expected = [frame.image for frame in animate(model, crop, audio)]
        live, made = LiveAnimation(model, crop, gather_frames=2), []
        for start in range(0, len(audio), 640):  # 40 ms pieces: one frame's audio each
            made.append([frame.image for frame in live.push(audio[start : start + 640])])
        made.append([frame.image for frame in live.finish()])
    assert {len(frames) for frames in made[:-1]} == {0, 2}  # every other piece completes a pair
    frames = [image for frames in made for image in frames]
    assert len(frames) == len(expected) == 25
    for want, got in zip(expected, frames):
        assert_close(want, got)


def test_a_stream_recognises_the_visemes_a_file_gives_on_real_speech(grid_dir):
    path = grid_dir / "pwij3p.mpg"
    if not path.is_file():
        pytest.skip(f"GRID clip not found at {path}")
    audio = read_audio(path, 16000)
    whole = speech_visemes(audio, frame_count(len(audio), 16000, 25), 16000, 25)
    stream, rows = StreamingAudio(AUDIO_DEFAULTS, 25, 5, visemes=True), []
    for start in range(0, len(audio), 3200):  # 200 ms pieces, as a microphone sends them
        rows += [batch["visemes"][:, 2].numpy() for batch in stream.push(audio[start : start + 3200])]
    rows += [batch["visemes"][:, 2].numpy() for batch in stream.finish()]
    live = np.concatenate(rows)  # each frame's own visemes (the centre of its window)
    assert live.shape == whole.shape
    # The openness the phonemes ask for: heard in pieces with a second before each, close to the file's.
    assert np.corrcoef(live[:, -1], whole[:, -1])[0, 1] > 0.6


def test_a_live_face_takes_the_mouth_strength_animate_does(model):
    painting = copy.deepcopy(model)
    torch.nn.init.normal_(painting.generator.composite_head.to_change.weight, std=0.05)  # a mouth that changes
    crop = face_photo(photo(256), model.image_size, float(model.features["crop_margin"])).crop
    audio = speech(1.0, seed=5)
    with torch_threads(1):
        default = [frame.image for frame in animate(painting, crop, audio)]
        expected = [frame.image for frame in animate(painting, crop, audio, mouth_strength=0.0)]
        live = LiveAnimation(painting, crop, mouth_strength=0.0)
        frames = [frame.image for frame in live.push(audio)] + [frame.image for frame in live.finish()]
    assert len(frames) == len(expected) == 25
    for want, got in zip(expected, frames):
        assert_close(want, got)
    assert max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(default, frames)) > 2


def test_pcm_chunks_decode_as_the_file_does(inputs):
    _, audio, pcm = inputs
    decoder, pieces, position = PcmDecoder(44100, 1, 16000), [], 0
    for size in np.random.default_rng(1).integers(1, 3000, 400):
        pieces.append(decoder.decode(pcm[2 * position : 2 * (position + size)]))
        position += size
    pieces.append(decoder.flush())
    np.testing.assert_array_equal(np.concatenate(pieces), read_audio(audio, 16000))
    with pytest.raises(ValueError, match="not whole"):
        decoder.decode(b"\x00\x01\x02")


def test_the_stream_sends_every_frame_in_order_and_matches_generate(server, model, inputs, tmp_path):
    image, audio, pcm = inputs
    result = asyncio.run(
        stream(ws_url(server), image.read_bytes(), pcm, 44100, chunk_s=0.03, realtime=False, options=CROPS)
    )
    assert result.error is None and result.close_code == 1000
    assert result.ready["lookahead_ms"] == 200 and (result.ready["width"], result.ready["height"]) == (32, 32)
    assert [frame.index for frame in result.frames] == list(range(75))  # 3 s at 25 fps
    assert [frame.timestamp_s for frame in result.frames] == pytest.approx([i / 25 for i in range(75)])
    assert result.end == {"type": "end", "frames": 75, "dropped": 0}
    for want, got in zip(file_faces(model, image, audio), result.frames, strict=True):
        assert_close(want, decode(got.image))
    # And the default stream (faces pasted back, JPEG) shows what the mp4 `generate` writes, up to both codecs.
    pasted = asyncio.run(stream(ws_url(server), image.read_bytes(), pcm, 44100, realtime=False))
    video = generate_video(model, image, audio, tmp_path / "out.mp4", progress=False, threads=1)
    with av.open(str(video.path)) as container:
        encoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(encoded) == 75
    assert len(pasted.frames) == 75 and decode(pasted.frames[0].image).shape == encoded[0].shape
    differences = [np.abs(a.astype(int) - decode(b.image).astype(int)).mean() for a, b in zip(encoded, pasted.frames)]
    assert max(differences) < 3


def test_two_clients_at_once_get_their_own_faces(server, model, tmp_path):
    faces = [photo(256), np.ascontiguousarray(photo(256)[:, ::-1] * np.array([0.8, 1.0, 1.2])).clip(0, 255)]
    faces = [face.astype(np.uint8) for face in faces]
    audio = speech(1.2, seed=8)
    paths = [write_image(tmp_path / f"face{i}.png", face) for i, face in enumerate(faces)]
    wav = write_audio(tmp_path / "speech.flac", audio)  # 16 kHz flac: the same samples as the PCM sent

    async def both():
        pcm = file_pcm(wav)
        return await asyncio.gather(
            *(stream(ws_url(server), path.read_bytes(), pcm, 16000, options=CROPS) for path in paths)
        )

    results = asyncio.run(both())
    for path, result in zip(paths, results):
        assert result.close_code == 1000 and len(result.frames) == 30
        for want, got in zip(file_faces(model, path, wav), result.frames, strict=True):
            assert_close(want, decode(got.image))
    # and those are two different faces, far apart beside the one level of rounding allowed above
    assert np.abs(decode(results[0].frames[0].image).astype(int) - decode(results[1].frames[0].image)).mean() > 5


def test_faces_found_in_parallel_threads_are_each_photos_own():
    # Sessions find their photos' faces in parallel worker threads; one dlib detector shared by two threads at
    # once answered a box of the other photo now and then (10-17 of these 200 when it was shared).
    faces = [photo(256), np.ascontiguousarray(photo(256)[:, ::-1] * np.array([0.8, 1.0, 1.2])).clip(0, 255)]
    faces = [face.astype(np.uint8) for face in faces]
    boxes = [find_face(face) for face in faces]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda i: find_face(faces[i % 2]), range(200)))
    assert all(np.array_equal(box, boxes[i % 2]) for i, box in enumerate(found))


def health(base: str) -> dict:
    with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
        return json.loads(response.read())


def test_a_client_leaving_mid_stream_frees_its_session_at_once(model):
    with torch_threads(1), running_server(model, ServerSettings(max_sessions=1, threads=1)) as base:
        pcm = to_pcm16(speech(4.0))
        first = asyncio.run(stream(ws_url(base), jpeg(photo(256)), pcm, 16000, stop_after_s=1.0))
        assert first.end is None and first.ready["type"] == "ready"
        deadline = time.monotonic() + 2
        while health(base)["sessions"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert health(base)["sessions"] == 0
        again = asyncio.run(stream(ws_url(base), jpeg(photo(256)), pcm[:32000], 16000, realtime=False))
        assert again.close_code == 1000 and len(again.frames) == 25
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        assert 'talking_face_sessions_total{kind="stream",outcome="disconnected"} 1.0' in metrics
        assert 'talking_face_sessions_total{kind="stream",outcome="completed"} 1.0' in metrics
        assert "talking_face_frame_latency_seconds_count" in metrics
        assert objects_alive(StreamSession, LiveAnimation) == 0  # freed, not just uncounted


def objects_alive(*kinds: type) -> int:
    gc.collect()
    return sum(type(thing) in kinds for thing in gc.get_objects())


async def raw_session(url: str, messages: list) -> tuple[dict | None, int | None]:
    """Sends `messages` (JSON-able dicts as text, bytes as binary, floats as pauses); returns the server's
    error message and the close code."""
    async with websockets.connect(url, max_size=None) as socket:
        error = None
        try:
            for message in messages:
                if isinstance(message, float):
                    await asyncio.sleep(message)
                else:
                    await socket.send(json.dumps(message) if isinstance(message, dict) else message)
            async for reply in socket:
                if isinstance(reply, str) and json.loads(reply)["type"] == "error":
                    error = json.loads(reply)
        except websockets.ConnectionClosed:
            pass
        return error, socket.close_code


BAD_SESSIONS = {
    "options that are not JSON": (["hello"], 1003, "JSON options"),
    "no sample rate": ([{"channels": 1}], 1003, "sample_rate"),
    "an unsupported sample rate": ([{"sample_rate": 1000}], 1003, "1000 Hz"),
    "a mouth strength above 1": ([{"sample_rate": 16000, "mouth_strength": 2}], 1003, "mouth_strength must be"),
    "an unreadable photo": ([{"sample_rate": 16000}, b"not an image"], 1007, "not a readable image"),
    "a photo without a face": ([{"sample_rate": 16000}, jpeg(np.full((200, 200, 3), 90, np.uint8))], 1007, "no face"),
    "half a sample": ([{"sample_rate": 16000}, "PHOTO", b"\x00\x00\x01"], 1003, "not whole"),
    "a chunk too large": ([{"sample_rate": 16000}, "PHOTO", bytes(20000)], 1009, "over the 16384 limit"),
    "text instead of audio": ([{"sample_rate": 16000}, "PHOTO", "more audio"], 1003, "expected audio"),
    "silence for too long": ([{"sample_rate": 16000}, "PHOTO", *[bytes(16000)] * 3], 1008, "silent"),
    "too much audio": ([{"sample_rate": 16000}, "PHOTO", *["SPEECH"] * 11], 1008, "5 s limit"),
    "nothing for too long": ([{"sample_rate": 16000}, "PHOTO", 2.5], 1008, "nothing received for 2 s"),
    "the end before any audio": ([{"sample_rate": 16000}, "PHOTO", {"type": "end"}], 1007, "before any audio"),
}


def test_bad_input_gets_its_error_and_close_code_while_another_client_streams(server):
    face, half_second = jpeg(photo(256)), to_pcm16(speech(0.5, seed=2))
    fill = {"PHOTO": face, "SPEECH": half_second}

    async def scenario():
        good = asyncio.create_task(stream(ws_url(server), face, to_pcm16(speech(3.0)), 16000, chunk_s=0.1))
        outcomes = {}
        for name, (messages, _, _) in BAD_SESSIONS.items():
            messages = [fill.get(m, m) if isinstance(m, str) else m for m in messages]
            outcomes[name] = await raw_session(ws_url(server), messages)
        return await good, outcomes

    good, outcomes = asyncio.run(scenario())
    for name, (_, code, words) in BAD_SESSIONS.items():
        error, close_code = outcomes[name]
        assert error is not None and words in error["message"], (name, error)
        assert error["code"] == close_code == code, name
    assert good.close_code == 1000 and [frame.index for frame in good.frames] == list(range(75))
    assert health(server)["sessions"] == 0


def test_the_session_cap_answers_503_with_the_reason(model, inputs):
    image, audio, _ = inputs
    with torch_threads(1), running_server(model, ServerSettings(max_sessions=1, threads=1)) as base:

        async def while_one_streams():
            async with websockets.connect(ws_url(base)) as first:
                await first.send(json.dumps({"sample_rate": 16000}))
                await first.send(image.read_bytes())
                assert json.loads(await first.recv())["type"] == "ready"
                with pytest.raises(websockets.InvalidStatus) as refused:
                    async with websockets.connect(ws_url(base)):
                        pass
                files = {"photo": image.open("rb"), "audio": audio.open("rb")}
                post = await asyncio.to_thread(requests.post, base + "/v1/videos", files=files, timeout=60)
                return refused.value.response, post

        response, post = asyncio.run(while_one_streams())
        assert response.status_code == 503 and b"1 of 1 sessions in use" in response.body
        assert post.status_code == 503 and "server busy" in post.json()["detail"]


def test_the_video_endpoint_returns_generates_mp4(server, inputs):
    image, audio, _ = inputs
    with image.open("rb") as photo_file, audio.open("rb") as audio_file:
        answer = requests.post(server + "/v1/videos", files={"photo": photo_file, "audio": audio_file}, timeout=120)
    assert answer.status_code == 200 and answer.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(answer.content)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 75
    blank = jpeg(np.full((100, 100, 3), 90, np.uint8))
    with audio.open("rb") as audio_file:
        refused = requests.post(server + "/v1/videos", files={"photo": blank, "audio": audio_file}, timeout=60)
    assert refused.status_code == 422 and refused.json()["detail"] == "photo: no face found in the image"
    assert requests.post(server + "/v1/videos", files={"photo": blank}, timeout=60).status_code == 422


@pytest.mark.parametrize(
    "start, port, model",
    [("make serve", 8000, "models:/talking-face-man@champion"),
     (".venv/bin/talking-face serve", 8001, "data/06_models/talking_face_model.pt")],
)  # fmt: skip
def test_the_readmes_live_server_commands_run_as_printed(start, port, model, tmp_path, inputs):
    line = readme_line(start)
    project = trained_project(tmp_path / "project", untrained_bundle(tmp_path / "model.pt"))
    with running_command(line, project, port, "/healthz", tmp_path / "server.log"):
        assert health(f"http://127.0.0.1:{port}")["model"] == model
        image, audio, pcm = inputs
        result = asyncio.run(stream(f"ws://127.0.0.1:{port}/v1/stream", image.read_bytes(), pcm[:88200], 44100))
        assert result.close_code == 1000 and len(result.frames) == 25
        if port == 8000:  # the README's Python client, as printed, against `make serve`
            write_image(project / "face.jpg", photo(256))
            write_audio(project / "speech.wav", speech(1.0))
            script = readme_python_block("**The stream**")
            ran = subprocess.run([".venv/bin/python", "-c", script], cwd=project, capture_output=True, text=True)
            assert ran.returncode == 0, ran.stderr[-2000:]
            assert ran.stdout.split() == ["25", "0", "0.0"]


def wait_for_drops(base: str, count: int, within_s: float = 120.0) -> None:
    deadline = time.monotonic() + within_s
    while True:
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        dropped = next(line for line in metrics.splitlines() if line.startswith("talking_face_frames_dropped_total"))
        if float(dropped.split()[-1]) >= count:
            return
        assert time.monotonic() < deadline, f"the server dropped no {count} frames for a client reading nothing"
        time.sleep(0.05)


@pytest.mark.parametrize("policy", ["drop", "block"])
def test_a_client_reading_too_slowly_loses_its_oldest_frames_or_pauses_its_generation(policy, model):
    settings = ServerSettings(max_sessions=1, threads=1, queue_frames=2, backpressure=policy)
    big_frames = jpeg(photo(720))  # 720 px PNG frames fill the socket buffers in a few frames
    with torch_threads(1), running_server(model, settings) as base:

        async def slow_reader():
            async with websockets.connect(ws_url(base), max_queue=1, max_size=None) as socket:
                await socket.send(json.dumps({"sample_rate": 16000, "format": "png"}))
                await socket.send(big_frames)
                assert json.loads(await socket.recv())["type"] == "ready"
                await socket.send(to_pcm16(speech(2.0)))
                await socket.send(json.dumps({"type": "end"}))
                if policy == "drop":  # reads nothing until the server has dropped frames, however fast it runs
                    await asyncio.to_thread(wait_for_drops, base, 11)
                else:  # reads nothing for a while: the model waits
                    await asyncio.sleep(3)
                frames, end = [], None
                async for message in socket:
                    if isinstance(message, bytes):
                        frames.append(FRAME_HEADER.unpack_from(message)[0])
                    else:
                        end = json.loads(message)
                return frames, end

        frames, end = asyncio.run(slow_reader())
    assert frames == sorted(frames) and frames[0] == 0 and frames[-1] == 49
    if policy == "drop":
        assert end["dropped"] > 10 and len(frames) == 50 - end["dropped"] == end["frames"], end
    else:
        assert end["dropped"] == 0 and frames == list(range(50))
