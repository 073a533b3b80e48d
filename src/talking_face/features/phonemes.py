"""What the speech says the mouth should do: pocketsphinx's phonemes per video frame and the mouth opening
they ask for, whoever speaks.

Phonemes come from pocketsphinx's all-phone search with the English acoustic model and phone language
model that ship inside its wheel (offline, BSD). A fixed table turns each ARPAbet phoneme into an openness
from 0 (lips shut: p, b, m and silence) to 1 (the widest vowels), a viseme-level reading that needs no
training and no speaker's voice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000  # the acoustic model's rate
PHONE_FRAME_RATE = 100  # pocketsphinx analyses 10 ms frames

# How far each phoneme opens the mouth (0 shut, 1 widest): open vowels high, rounded and close vowels
# lower, bilabials shut, labiodentals nearly shut; anything unlisted (silence, noise fillers) is shut.
OPENNESS = {
    "AA": 1.0, "AE": 0.9, "AH": 0.75, "AO": 0.9, "AW": 0.9, "AY": 0.9, "EH": 0.7, "ER": 0.5, "EY": 0.65,
    "IH": 0.5, "IY": 0.4, "OW": 0.7, "OY": 0.7, "UH": 0.5, "UW": 0.35,
    "B": 0.0, "P": 0.0, "M": 0.0, "F": 0.15, "V": 0.15, "W": 0.25, "R": 0.35, "Y": 0.35,
    "CH": 0.3, "JH": 0.3, "SH": 0.3, "ZH": 0.3, "S": 0.25, "Z": 0.25, "TH": 0.35, "DH": 0.35,
    "T": 0.35, "D": 0.35, "N": 0.35, "L": 0.4, "K": 0.45, "G": 0.45, "NG": 0.45, "HH": 0.55,
}  # fmt: skip


@dataclass(frozen=True)
class Phone:
    label: str  # ARPAbet phoneme, or SIL / a filler such as +NSN+
    start_s: float
    end_s: float  # exclusive


def _decoder():
    """A fresh decoder: one that has heard other audio adapts its cepstral normalisation and segments the
    same clip differently (0.1 s to build)."""
    from pocketsphinx import Decoder, get_model_path

    models = get_model_path()
    return Decoder(
        hmm=os.path.join(models, "en-us", "en-us"),
        allphone=os.path.join(models, "en-us", "en-us-phone.lm.bin"),
        lw=2.0, beam=1e-20, pbeam=1e-20, loglevel="FATAL",
    )  # fmt: skip


def recognise_phones(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Phone]:
    """The phonemes of mono `audio` (float in [-1, 1]) with their times; about 0.2 s per 3 s clip."""
    if sample_rate != SAMPLE_RATE:
        import librosa

        audio = librosa.resample(np.asarray(audio, dtype=np.float32), orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder = _decoder()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    step = 1.0 / PHONE_FRAME_RATE
    return [Phone(seg.word, seg.start_frame * step, (seg.end_frame + 1) * step) for seg in decoder.seg()]


def openness_track(phones: list[Phone], n_frames: int, fps: float) -> np.ndarray:
    """float64 [n_frames]: the mean openness of the phonemes heard while each video frame is shown,
    [t, t + 1) / fps seconds, in 10 ms steps; time no phoneme covers counts as shut."""
    per_step = np.zeros(int(np.ceil(n_frames / fps * PHONE_FRAME_RATE)) + 1)
    for phone in phones:
        start, end = int(round(phone.start_s * PHONE_FRAME_RATE)), int(round(phone.end_s * PHONE_FRAME_RATE))
        per_step[start:end] = OPENNESS.get(phone.label, 0.0)
    bounds = np.round(np.arange(n_frames + 1) * PHONE_FRAME_RATE / fps).astype(int)
    return np.array([per_step[a:max(b, a + 1)].mean() for a, b in zip(bounds[:-1], bounds[1:])])


def speech_openness(audio: np.ndarray, n_frames: int, sample_rate: int = SAMPLE_RATE, fps: float = 25.0) -> np.ndarray:
    """The mouth opening the speech asks for at each of `n_frames` video frames (`openness_track`)."""
    return openness_track(recognise_phones(audio, sample_rate), n_frames, fps)
