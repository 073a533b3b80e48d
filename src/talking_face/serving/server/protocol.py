"""The `WS /v1/stream` protocol: its messages, close codes and frame encoding (shared by the server and
the Python client).

Protocol (JSON text messages, binary audio and frames):

  client -> {"sample_rate": 48000, "channels": 1, "format": "jpeg", "paste_back": true, "blink_rate": 0.3}
            (only sample_rate is required; blink_rate: blinks per second, 0 for none, default generate's;
            "mouth_strength": 0 to 1, how far the mouth changes from the photo, default the model's)
  client -> the photo file's bytes (binary)
  server -> {"type": "ready", "fps": 25, "lookahead_ms": 200, "width": W, "height": H, "session": id}
  client -> audio chunks (binary, 16-bit little-endian PCM at sample_rate, interleaved if 2 channels), any length
  server -> each frame as soon as its audio has arrived (binary): a 12-byte header, big-endian uint32 frame
            index and float64 timestamp in seconds, then the JPEG (or PNG) image
  client -> {"type": "end"}: the audio is complete; the server sends the remaining frames, then
  server -> {"type": "end", "frames": n, "dropped": d} and closes with 1000.

With access tokens (serving.server.access) the handshake carries `Authorization: Bearer <token>`, or the
first message carries "token" beside the options (browsers cannot set WebSocket headers).

Bad input ends the session with one {"type": "error", "code": c, "message": "..."} and a close with code c:
1003 wrong audio format or message order, 1007 unreadable photo, no face or no audio, 1009 a photo or chunk too large,
1008 a limit reached (session length, silence, idle) or a missing or wrong token, 1011 a server fault,
1013 a session limit reached after the handshake, 1001 the server stopping. Other sessions go on.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import cv2
import numpy as np

from talking_face.features.eyes import DEFAULT_BLINK_RATE

FRAME_HEADER = struct.Struct(">Id")  # frame index, timestamp (s)
FORMATS = {"jpeg": ".jpg", "png": ".png"}
JPEG_QUALITY = 90

UNSUPPORTED, POLICY, INVALID, TOO_BIG, SERVER_FAULT = 1003, 1008, 1007, 1009, 1011
GOING_AWAY, TRY_AGAIN = 1001, 1013  # the server stopping; a session limit reached after the handshake


class SessionError(Exception):
    """Ends a session: `message` goes to the client, `code` is the WebSocket close code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, " ".join(message.split())


@dataclass(frozen=True)
class StreamOptions:
    sample_rate: int
    channels: int = 1
    format: str = "jpeg"
    paste_back: bool = True
    blink_rate: float = DEFAULT_BLINK_RATE
    mouth_strength: float | None = None  # None: the model's own

    @classmethod
    def parse(cls, text: str | None) -> StreamOptions:
        try:
            values = json.loads(text) if text is not None else None
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):
            raise SessionError(UNSUPPORTED, "the first message must be JSON options, e.g. {\"sample_rate\": 16000}")
        known = {"sample_rate", "channels", "format", "paste_back", "blink_rate", "mouth_strength", "token"}
        unknown = set(values) - known  # "token" is the access check's (serving.server.access), not kept
        if unknown:
            raise SessionError(UNSUPPORTED, f"unknown option(s): {', '.join(sorted(unknown))}")
        rate, channels = values.get("sample_rate"), values.get("channels", 1)
        if not isinstance(rate, int) or isinstance(rate, bool):
            raise SessionError(UNSUPPORTED, "sample_rate must be the audio's rate in Hz, an integer")
        if values.get("format", "jpeg") not in FORMATS:
            raise SessionError(UNSUPPORTED, f"format must be one of {', '.join(FORMATS)}")
        if not isinstance(channels, int) or isinstance(channels, bool):
            raise SessionError(UNSUPPORTED, "channels must be 1 or 2")
        blink_rate = values.get("blink_rate", DEFAULT_BLINK_RATE)
        if not isinstance(blink_rate, (int, float)) or isinstance(blink_rate, bool) or not 0 <= blink_rate <= 5:
            raise SessionError(UNSUPPORTED, "blink_rate must be blinks per second, from 0 to 5")
        strength = values.get("mouth_strength")
        if strength is not None and (not isinstance(strength, (int, float)) or isinstance(strength, bool) or not 0 <= strength <= 1):
            raise SessionError(UNSUPPORTED, "mouth_strength must be from 0 (the photo's mouth) to 1 (as trained)")
        paste_back = bool(values.get("paste_back", True))
        strength = None if strength is None else float(strength)
        return cls(rate, channels, values.get("format", "jpeg"), paste_back, float(blink_rate), strength)


def encode_frame(image: np.ndarray, suffix: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if suffix == ".jpg" else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise SessionError(SERVER_FAULT, "a frame could not be encoded")
    return data.tobytes()


def message_field(text: str | None, name: str) -> str | None:
    """A string field of a JSON object message (None when absent or not a JSON object)."""
    try:
        value = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None
    found = value.get(name) if isinstance(value, dict) else None
    return found if isinstance(found, str) else None
