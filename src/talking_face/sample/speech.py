"""Spoken sentences with the time of every phoneme: espeak-ng voices saying the sample sentences.

espeak-ng reports where each of its phonemes starts in the audio it writes, so the sample speech comes with
an exact phoneme track in ARPAbet, the labels pocketsphinx recognises (`talking_face.features.phonemes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from talking_face.features.phonemes import Phone
from talking_face.sample.espeak import speak
from talking_face.sample.sentences import SENTENCES

# RMS amplitude of the loudest video frame of the written audio (about -19 dBFS); loudness 1.0 maps to it.
SPEECH_RMS = 0.11
LOUDNESS_FPS = 25  # the clips' frame rate: loudness is normalised per 40 ms frame

# espeak-ng's American English phoneme mnemonics (stress marks removed) -> ARPAbet; "_" is a pause.
ARPABET = {
    "a": "AE", "aa": "AE", "a#": "AH", "A@": "AA", "0": "AA", "aI": "AY", "aI3": "AY", "aU": "AW",
    "@": "AH", "@2": "AH", "V": "AH", "3": "ER", "3:": "ER", "E": "EH", "e@": "EH", "eI": "EY",
    "I": "IH", "I#": "IH", "I2": "IH", "i@": "IH", "i@3": "IH", "i": "IY", "i:": "IY",
    "O2": "AO", "O:": "AO", "O@": "AO", "o@": "AO", "OI": "OY", "oU": "OW", "U": "UH", "u:": "UW",
    "b": "B", "d": "D", "f": "F", "g": "G", "h": "HH", "k": "K", "l": "L", "m": "M", "n": "N", "N": "NG",
    "p": "P", "r": "R", "r-": "R", "s": "S", "S": "SH", "t": "T", "t#": "T", "T": "TH", "D": "DH",
    "tS": "CH", "dZ": "JH", "v": "V", "w": "W", "j": "Y", ";": "Y", "z": "Z", "Z": "ZH",
}  # fmt: skip
PAUSES = {"_", "_:"}


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: American English with a variant ("m1".."m7", "f1".."f5"), pitch and pitch range
    (0-100) and speaking rate (words per minute)."""

    variant: str = "m3"
    pitch: int = 40
    pitch_range: int = 50
    rate: int = 165

    @property
    def name(self) -> str:
        return f"en-us+{self.variant}"


@dataclass(frozen=True)
class Speech:
    """Spoken sentences with the phonemes they are made of."""

    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    phones: list[Phone]  # ARPAbet, in time order; pauses are left uncovered
    sentences: list[str]


def say(sentence: str, voice: Voice) -> tuple[np.ndarray, int, list[Phone]]:
    """(float samples, espeak's sample rate, ARPAbet phones) of `voice` saying `sentence`."""
    utterance = speak(sentence, voice.name, voice.rate, voice.pitch, voice.pitch_range)
    ends = [start for start, _ in utterance.phoneme_starts[1:]] + [len(utterance.samples)]
    phones = []
    for (start, mnemonic), end in zip(utterance.phoneme_starts, ends):
        mnemonic = mnemonic.lstrip("',")
        if mnemonic in PAUSES or end <= start:  # espeak sometimes names a phoneme it gives no time
            continue
        if mnemonic not in ARPABET:
            raise ValueError(f"espeak-ng phoneme {mnemonic!r} in {sentence!r} has no ARPAbet label in ARPABET")
        phones.append(Phone(ARPABET[mnemonic], start / utterance.sample_rate, end / utterance.sample_rate))
    return utterance.samples.astype(np.float32) / 32768, utterance.sample_rate, phones


def synthesize(seconds: float, seed: int, voice: Voice = Voice(), sample_rate: int = 16000) -> Speech:
    """`seconds` of `voice` saying sample sentences chosen by `seed`, between short pauses; the last one is cut
    where the time runs out. The same arguments give the same samples."""
    if seconds <= 0:
        raise ValueError(f"speech must last a positive number of seconds, got {seconds}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(SENTENCES))
    pieces, phones, sentences = [], [], []
    time = float(rng.uniform(0.1, 0.3))
    while time < seconds:
        sentence = SENTENCES[order[len(sentences) % len(order)]]
        samples, espeak_rate, said = say(sentence, voice)
        pieces.append((time, samples))
        phones += [
            Phone(p.label, time + p.start_s, min(time + p.end_s, seconds)) for p in said if time + p.start_s < seconds
        ]
        sentences.append(sentence)
        time += len(samples) / espeak_rate + float(rng.uniform(0.2, 0.5))
    track = np.zeros(int(np.ceil(time * espeak_rate)), np.float32)
    for start, samples in pieces:
        offset = int(round(start * espeak_rate))
        track[offset : offset + len(samples)] = samples
    n = int(round(seconds * sample_rate))
    audio = librosa.util.fix_length(librosa.resample(track, orig_sr=espeak_rate, target_sr=sample_rate), size=n)
    audio = audio * _fade_out(n, sample_rate)
    audio = audio / max(frame_loudness(audio, sample_rate, LOUDNESS_FPS).max(), 1e-8)
    room_noise = 1e-3 * rng.standard_normal(n)  # 60 dB below speech, so pauses are not digital silence
    return Speech(np.clip(audio + room_noise, -1.0, 1.0).astype(np.float32), sample_rate, phones, sentences)


def _fade_out(n: int, sample_rate: int, seconds: float = 0.02) -> np.ndarray:
    """Gain that falls to 0 over the last `seconds`, so a sentence cut short does not click."""
    gain = np.ones(n, np.float32)
    ramp = min(n, int(seconds * sample_rate))
    gain[n - ramp :] = np.linspace(1.0, 0.0, ramp)
    return gain


def frame_loudness(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int | None = None) -> np.ndarray:
    """RMS of the audio under each video frame relative to SPEECH_RMS (1.0 = the loudest frame of sample speech)."""
    hop = int(round(sample_rate / fps))
    n_frames = len(audio) // hop if n_frames is None else n_frames
    padded = np.pad(np.asarray(audio, dtype=np.float32), (0, max(0, n_frames * hop - len(audio))))
    rms = librosa.feature.rms(y=padded, frame_length=hop, hop_length=hop, center=False)[0]
    return rms[:n_frames] / SPEECH_RMS
