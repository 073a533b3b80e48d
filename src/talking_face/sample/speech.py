"""Speech-like audio synthesized with numpy: syllables of formant-shaped voiced sound, fricatives, pauses.

A source-filter model: a band-limited harmonic source that follows a moving F0 contour and a white-noise
source are shaped in the STFT domain by vowel formant envelopes and fricative noise bands, then gated by
per-syllable loudness envelopes. The result has a pitch contour that pyworld tracks, spectra that look
like vowels and consonants, and a loudness envelope that drives the mouth of the animated face.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

# First three formants (Hz) of adult vowels (Peterson & Barney averages); a speaker scales them.
VOWEL_FORMANTS = {
    "a": (730, 1090, 2440),
    "ae": (660, 1720, 2410),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
    "er": (490, 1350, 1690),
}
FORMANT_BANDWIDTHS = (80.0, 110.0, 160.0)
# Fricative noise bands (centre Hz, bandwidth Hz, level relative to a vowel).
FRICATIVES = {"s": (5500, 2500, 0.35), "sh": (3000, 1400, 0.4), "f": (4000, 6000, 0.2), "h": (1500, 2500, 0.25)}
# RMS amplitude of the loudest syllable in the written audio (about -19 dBFS); loudness 1.0 maps to it.
SPEECH_RMS = 0.11
N_FFT, HOP = 512, 128


@dataclass(frozen=True)
class Voice:
    """A speaker's voice: base pitch (Hz) and vocal-tract scaling of the formants."""

    base_f0: float = 120.0
    formant_scale: float = 1.0


@dataclass(frozen=True)
class Speech:
    """Synthesized audio with the ground truth it was made from, all per sample."""

    samples: np.ndarray  # float32 mono in [-1, 1]
    loudness: np.ndarray  # float32 RMS loudness envelope, 1.0 = the loudest syllable level
    f0: np.ndarray  # float32 Hz where voiced, 0 elsewhere
    sample_rate: int


@dataclass
class _Tracks:
    """Per-sample control tracks the syllable planner fills in."""

    voiced_gain: np.ndarray
    noise_gain: np.ndarray
    formants: np.ndarray  # [n, 3] Hz
    noise_band: np.ndarray  # [n, 2] centre, bandwidth Hz


def _window(n: int, attack: int, release: int) -> np.ndarray:
    """A plateau with raised-cosine attack and release, so segments never click."""
    w = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    w[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / max(attack, 1))
    w[n - release :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(release) / max(release, 1))
    return w


def _plan(rng: np.random.Generator, n: int, sr: int, voice: Voice) -> _Tracks:
    """Lays out words of 1-3 syllables (onset consonant, vowel nucleus, optional coda) between pauses."""
    tracks = _Tracks(np.zeros(n), np.zeros(n), np.zeros((n, 3)), np.zeros((n, 2)))
    tracks.formants[:] = np.array(VOWEL_FORMANTS["er"]) * voice.formant_scale
    tracks.noise_band[:] = FRICATIVES["h"][:2]
    ms = sr // 1000
    t = int(rng.uniform(80, 250) * ms)
    while t < n - 200 * ms:
        word_level = rng.uniform(0.45, 1.0)
        for _ in range(rng.integers(1, 4)):
            kind = rng.choice(["fricative", "plosive", "none"], p=[0.45, 0.25, 0.3])
            if kind == "fricative":
                t = _add_noise(tracks, rng, t, int(rng.uniform(60, 130) * ms), word_level)
            elif kind == "plosive":
                t += int(rng.uniform(30, 60) * ms)  # closure: silence before the burst
                t = _add_noise(tracks, rng, t, int(rng.uniform(12, 25) * ms), word_level, fricative="h")
            length = int(rng.uniform(110, 260) * ms)
            vowel = rng.choice(list(VOWEL_FORMANTS))
            end = min(t + length, n)
            if end <= t:
                break
            tracks.voiced_gain[t:end] = word_level * rng.uniform(0.6, 1.0) * _window(end - t, 25 * ms, 50 * ms)
            tracks.formants[t:end] = np.array(VOWEL_FORMANTS[vowel]) * voice.formant_scale
            t = end
            if rng.random() < 0.2 and t < n:
                t = _add_noise(tracks, rng, t, int(rng.uniform(50, 100) * ms), word_level)
        t += int((rng.uniform(250, 500) if rng.random() < 0.25 else rng.uniform(40, 180)) * ms)
    return tracks


def _add_noise(tracks: _Tracks, rng, start: int, length: int, level: float, fricative: str | None = None) -> int:
    """A fricative (or plosive burst) of band-shaped noise; returns where it ends."""
    fricative = fricative or str(rng.choice(list(FRICATIVES)))
    centre, bandwidth, relative = FRICATIVES[fricative]
    end = min(start + length, len(tracks.noise_gain))
    if end <= start:
        return start
    ramp = max(1, (end - start) // 4)
    tracks.noise_gain[start:end] = np.maximum(
        tracks.noise_gain[start:end], level * relative * _window(end - start, ramp, ramp)
    )
    tracks.noise_band[start:end] = (centre, bandwidth)
    return end


def _f0_contour(rng: np.random.Generator, n: int, sr: int, voice: Voice) -> np.ndarray:
    """Phrase declination, slow accents and a little vibrato around the speaker's base pitch."""
    t = np.arange(n) / sr
    duration = n / sr
    declination = 0.12 * (0.5 - t / max(duration, 1e-6))
    accents = sum(
        rng.uniform(0.05, 0.14) * np.sin(2 * np.pi * rng.uniform(0.6, 2.2) * t + rng.uniform(0, 2 * np.pi))
        for _ in range(3)
    )
    vibrato = 0.01 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 2 * np.pi))
    return np.clip(voice.base_f0 * np.exp(declination + accents + vibrato), 75.0, 380.0)


def _harmonic_source(f0: np.ndarray, sr: int) -> np.ndarray:
    """Band-limited glottal-like source: harmonics with a -6 dB/octave tilt, none above 0.45 * sr."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    source = np.zeros_like(f0)
    for k in range(1, int(0.45 * sr / f0.min()) + 1):
        source += np.where(k * f0 < 0.45 * sr, np.sin(k * phase) / k, 0.0)
    return source


def _resonances(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Magnitude response [F, frames] of cascaded two-pole resonators at the given formants [frames, 3]."""
    f = freqs[:, None]
    response = np.ones((len(freqs), len(formants)))
    for i, bandwidth in enumerate(FORMANT_BANDWIDTHS):
        centre = formants[None, :, i]
        response *= centre**2 / np.sqrt((centre**2 - f**2) ** 2 + (bandwidth * f) ** 2)
    return response


def _noise_bands(freqs: np.ndarray, bands: np.ndarray) -> np.ndarray:
    centre, bandwidth = bands[None, :, 0], bands[None, :, 1]
    return np.exp(-0.5 * ((freqs[:, None] - centre) / (bandwidth / 2)) ** 2)


def _shape(signal: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    """Filters `signal` by a time-varying magnitude envelope [F, frames], then restores unit short-term RMS."""
    spectrum = librosa.stft(signal, n_fft=N_FFT, hop_length=HOP)
    shaped = librosa.istft(spectrum * envelope[:, : spectrum.shape[1]], hop_length=HOP, length=len(signal))
    rms = librosa.feature.rms(y=shaped, frame_length=N_FFT, hop_length=HOP)[0]
    rms_per_sample = np.interp(np.arange(len(signal)), np.arange(len(rms)) * HOP, rms)
    return shaped / np.maximum(rms_per_sample, 1e-8)


def _at_frames(track: np.ndarray, n_frames: int) -> np.ndarray:
    """Samples a per-sample track at STFT frame centres (librosa centres frame i on sample i * HOP)."""
    return track[np.minimum(np.arange(n_frames) * HOP, len(track) - 1)]


def synthesize(seconds: float, seed: int, voice: Voice = Voice(), sample_rate: int = 16000) -> Speech:
    """Synthesizes `seconds` of speech-like audio; the same seed gives the same samples."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    tracks = _plan(rng, n, sample_rate, voice)
    f0 = _f0_contour(rng, n, sample_rate, voice)
    # Small cycle-to-cycle pitch jitter makes the source less synthetic without hurting the pitch track.
    f0_jittered = f0 * (1 + 0.004 * np.repeat(rng.standard_normal(n // 80 + 1), 80)[:n])
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=N_FFT)
    n_frames = 1 + n // HOP
    vowel_filter = _resonances(freqs, _at_frames(tracks.formants, n_frames))
    vowels = _shape(_harmonic_source(f0_jittered, sample_rate), vowel_filter)
    noise = _shape(rng.standard_normal(n), _noise_bands(freqs, _at_frames(tracks.noise_band, n_frames)))
    room_noise = 1e-3 * rng.standard_normal(n)  # 60 dB below speech, so pauses are not digital silence
    samples = SPEECH_RMS * (tracks.voiced_gain * vowels + tracks.noise_gain * noise + room_noise)
    loudness = np.sqrt(tracks.voiced_gain**2 + tracks.noise_gain**2)
    return Speech(
        samples=np.clip(samples, -1.0, 1.0).astype(np.float32),
        loudness=loudness.astype(np.float32),
        f0=np.where(tracks.voiced_gain > 0, f0, 0.0).astype(np.float32),
        sample_rate=sample_rate,
    )


def loudness_per_frame(loudness: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Mean loudness over each video frame's span of samples."""
    edges = np.round(np.arange(n_frames + 1) * sample_rate / fps).astype(int)
    edges = np.clip(edges, 0, len(loudness))
    sums = np.concatenate([[0.0], np.cumsum(loudness, dtype=np.float64)])
    counts = np.maximum(np.diff(edges), 1)
    return ((sums[edges[1:]] - sums[edges[:-1]]) / counts).astype(np.float32)
