"""Text to speech with espeak-ng, with the start of every phoneme it speaks, through ctypes.

The shared library and its voice data come from the `espeakng-loader` wheel, so nothing is installed
outside pip and nothing is downloaded at run time. espeak-ng is GPL-3.0-or-later. The project loads it as
a separate shared library at run time and only to make the sample corpus; it does not ship or modify it,
and the audio it writes is program output, not a work covered by the GPL. Anyone who redistributes the
project bundled with the wheel (an image, an installer) passes espeak-ng on under the GPL with its source.
Debian's flite (BSD-like) would avoid that duty, but it is not on PyPI (every install would need apt), and it
exposes phoneme timing only through its C API or its command-line tool.
"""

from __future__ import annotations

import _ctypes
import ctypes
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import espeakng_loader
import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of exiting the process
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED, EVENT_PHONEME = 0, 7
RATE, PITCH, RANGE = 1, 3, 4  # espeak_PARAMETER
RANDOM_SEED = 1  # the breathy variants add noise


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """speak_lib.h's espeak_EVENT."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples from the start of the message
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Utterance:
    """What espeak-ng said: int16 samples and (sample index, espeak mnemonic) where each phoneme starts."""

    samples: np.ndarray  # int16 mono
    sample_rate: int
    phoneme_starts: list[tuple[int, str]]  # mnemonics keep espeak's stress marks (' primary, , secondary)


_LOCK = threading.Lock()  # the library keeps global state: one utterance at a time


@contextmanager
def _fresh_library() -> Iterator[tuple[ctypes.CDLL, int]]:
    """espeak-ng loaded anew with its sample rate, and unloaded after: the library keeps state between
    utterances (its pitch flutter phase goes on), so only a fresh copy says a sentence the same every time."""
    library = ctypes.CDLL(espeakng_loader.get_library_path())
    try:
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT
        data = espeakng_loader.get_data_path().encode()
        sample_rate = library.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
        if sample_rate <= 0:
            raise RuntimeError(f"espeak-ng did not start (espeak_Initialize returned {sample_rate})")
        try:
            library.espeak_ng_SetRandSeed(RANDOM_SEED)
            yield library, sample_rate
        finally:
            library.espeak_Terminate()
    finally:
        _ctypes.dlclose(library._handle)


def speak(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> Utterance:
    """espeak-ng saying `text` with `voice` ("language+variant", e.g. "en-us+f3"), `rate` in words per minute,
    `pitch` and `pitch_range` from 0 to 100; the same arguments give the same samples."""
    chunks: list[np.ndarray] = []
    phoneme_starts: list[tuple[int, str]] = []

    def receive(wav, n_samples: int, events) -> int:
        if n_samples > 0:
            chunks.append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
        index = 0
        while events[index].type != EVENT_LIST_TERMINATED:
            if events[index].type == EVENT_PHONEME:
                phoneme_starts.append((events[index].sample, events[index].id.string.decode()))
            index += 1
        return 0  # go on synthesizing

    callback = _CALLBACK(receive)
    encoded = text.encode()
    with _LOCK, _fresh_library() as (library, sample_rate):
        library.espeak_SetSynthCallback(callback)
        if library.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        for parameter, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range)):
            library.espeak_SetParameter(parameter, value, 0)
        status = library.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak-ng could not say {text!r} (espeak_Synth returned {status})")
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return Utterance(samples, sample_rate, phoneme_starts)
