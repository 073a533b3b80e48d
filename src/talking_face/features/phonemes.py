"""What the speech says the mouth should do: pocketsphinx's phonemes per video frame and the mouth opening
they ask for, whoever speaks.

Phonemes come from pocketsphinx's all-phone search with the English acoustic model and phone language
model that ship inside its wheel (offline, BSD). A fixed table turns each ARPAbet phoneme into an openness
from 0 (lips shut: p, b, m and silence) to 1 (the widest vowels), a viseme-level reading that needs no
training and no speaker's voice.

The MAN generator's speech source (`visemes`) reads, per video frame, the share of its time each of 12
viseme classes is heard (phonemes that look alike on the lips: p/b/m, f/v, open vowels, rounded vowels...)
and the openness above: what is said, not whose voice says it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from talking_face.features.schema import N_VISEMES

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


# Viseme classes: phonemes the lips cannot tell apart share one; 0 is the rest (silence, fillers, unknown).
VISEME_GROUPS = (
    (), ("P", "B", "M"), ("F", "V"), ("TH", "DH"), ("T", "D", "N", "L", "S", "Z"), ("CH", "JH", "SH", "ZH"),
    ("K", "G", "NG", "HH", "Y"), ("R", "W"), ("IY", "IH", "EY", "EH"), ("AA", "AE", "AH", "AY", "AW"),
    ("AO", "OW", "OY", "UH", "UW"), ("ER",),
)  # fmt: skip
VISEME_OF = {phone: index for index, group in enumerate(VISEME_GROUPS) for phone in group}


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
    return _per_frame(_per_step(phones, n_frames, fps, lambda label: OPENNESS.get(label, 0.0)), n_frames, fps)


def _per_step(phones: list[Phone], n_frames: int, fps: float, value) -> np.ndarray:
    """[steps] or [steps, ...]: `value(label)` of the phoneme heard in each 10 ms step (the rest: value(""))."""
    steps = int(np.ceil(n_frames / fps * PHONE_FRAME_RATE)) + 1
    per_step = np.repeat(np.asarray(value(""))[None], steps, 0).astype(np.float64)
    for phone in phones:
        start, end = int(round(phone.start_s * PHONE_FRAME_RATE)), int(round(phone.end_s * PHONE_FRAME_RATE))
        per_step[start:end] = value(phone.label)
    return per_step


def _per_frame(per_step: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """The mean of the 10 ms steps heard while each video frame is shown, [t, t + 1) / fps seconds."""
    bounds = np.round(np.arange(n_frames + 1) * PHONE_FRAME_RATE / fps).astype(int)
    return np.stack([per_step[a:max(b, a + 1)].mean(0) for a, b in zip(bounds[:-1], bounds[1:])])


def viseme_track(phones: list[Phone], n_frames: int, fps: float) -> np.ndarray:
    """float32 [n_frames, N_VISEME_FEATURES]: each viseme class's share of the frame's time, then the
    frame's openness (`openness_track`)."""
    classes = np.eye(N_VISEMES)
    shares = _per_frame(_per_step(phones, n_frames, fps, lambda label: classes[VISEME_OF.get(label, 0)]), n_frames, fps)
    return np.concatenate([shares, openness_track(phones, n_frames, fps)[:, None]], 1).astype(np.float32)


def speech_visemes(audio: np.ndarray, n_frames: int, sample_rate: int = SAMPLE_RATE, fps: float = 25.0) -> np.ndarray:
    """The speech source of `n_frames` video frames of `audio` (`viseme_track`)."""
    return viseme_track(recognise_phones(audio, sample_rate), n_frames, fps)


def speech_openness(audio: np.ndarray, n_frames: int, sample_rate: int = SAMPLE_RATE, fps: float = 25.0) -> np.ndarray:
    """The mouth opening the speech asks for at each of `n_frames` video frames (`openness_track`)."""
    return openness_track(recognise_phones(audio, sample_rate), n_frames, fps)
