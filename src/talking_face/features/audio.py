"""Audio features per video frame: log-mel, MFCC, pyworld F0 and STFT energy, with 256-level quantization.

Video frame t is shown at t / fps seconds, so its audio window is centred on sample t * hop with
hop = sample_rate / fps (640 at 16 kHz and 25 fps); the audio is zero-padded before and after. Pitch and
energy are computed at the paper's finer rate (1024-sample frames, hop 256) and pooled onto video frames.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import librosa
import numpy as np

from talking_face.features.schema import N_LEVELS, N_MEL, N_MFCC

AUDIO_DEFAULTS = {
    "sample_rate": 16000,
    "mel_n_fft": 2048,
    "stft_n_fft": 1024,
    "stft_hop": 256,
    "f0_method": "dio",
    "f0_min": 60.0,
    "f0_max": 500.0,
    "energy_min": 0.01,
    "energy_max": 1000.0,
}


def video_hop(sample_rate: int, fps: float) -> int:
    """Audio samples per video frame; the rates must divide evenly so windows stay on whole samples."""
    hop = sample_rate / fps
    if abs(hop - round(hop)) > 1e-6:
        raise ValueError(f"sample rate {sample_rate} is not a whole multiple of {fps} fps")
    return int(round(hop))


def fit_to_frames(audio: np.ndarray, n_frames: int, hop: int) -> np.ndarray:
    """The audio cut or zero-padded at the end to exactly n_frames * hop samples."""
    audio = np.asarray(audio, dtype=np.float32)[: n_frames * hop]
    return np.pad(audio, (0, n_frames * hop - len(audio)))


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int) -> np.ndarray:
    """librosa's mel filter bank [256, n_fft / 2 + 1], built once: building it cost more than applying it to
    the short segments the live server analyses on every arrival."""
    filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=N_MEL)
    filters.flags.writeable = False
    return filters


def log_mel(audio: np.ndarray, n_frames: int, hop: int, sample_rate: int, n_fft: int) -> np.ndarray:
    """float32 [T, 256] log-mel (dB re 1, so levels compare across clips) of the window centred on each frame."""
    spectrum = librosa.stft(audio, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant")
    power = mel_filters(sample_rate, n_fft) @ (np.abs(spectrum) ** 2)  # what librosa's melspectrogram computes
    return librosa.power_to_db(power[:, :n_frames], ref=1.0, amin=1e-10, top_db=None).T.astype(np.float32)


def mfcc(log_mel_frames: np.ndarray) -> np.ndarray:
    """float32 [T, 13] MFCC (DCT of the log-mel) per frame."""
    return librosa.feature.mfcc(S=log_mel_frames.T, n_mfcc=N_MFCC).T.astype(np.float32)


def pitch_track(audio: np.ndarray, sample_rate: int, hop: int, f0_min: float, f0_max: float, method: str = "dio"):
    """pyworld F0 in Hz (0 where unvoiced), one value per `hop` samples, frame i centred on sample i * hop.

    "dio" is DIO refined by StoneMask (fast); "harvest" is more robust on noisy speech and ~50x slower.
    """
    with warnings.catch_warnings():  # pyworld imports the deprecated pkg_resources, warning each process
        warnings.simplefilter("ignore", UserWarning)
        import pyworld

    signal = audio.astype(np.float64)
    period_ms = 1000.0 * hop / sample_rate
    if method == "harvest":
        f0, _ = pyworld.harvest(signal, sample_rate, f0_floor=f0_min, f0_ceil=f0_max, frame_period=period_ms)
    elif method == "dio":
        f0, times = pyworld.dio(signal, sample_rate, f0_floor=f0_min, f0_ceil=f0_max, frame_period=period_ms)
        f0 = pyworld.stonemask(signal, f0, times, sample_rate)
    else:
        raise ValueError(f"unknown F0 method {method!r}: use 'dio' or 'harvest'")
    return f0.astype(np.float32)


def stft_energy(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """L2 norm of each STFT frame's magnitude, frame i centred on sample i * hop."""
    spectrum = np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant"))
    return np.linalg.norm(spectrum, axis=0).astype(np.float32)


def nearest_video_frame(n_values: int, hop: int, frame_hop: int) -> np.ndarray:
    """For values at sample i * hop, the index of the video frame (centred on t * frame_hop) nearest each."""
    return np.floor(np.arange(n_values) * hop / frame_hop + 0.5).astype(np.int64)


def pool_energy(energy: np.ndarray, hop: int, frame_hop: int, n_frames: int) -> np.ndarray:
    """Mean of the fine-rate energies that fall nearest each video frame."""
    owner = nearest_video_frame(len(energy), hop, frame_hop)
    keep = owner < n_frames
    sums = np.bincount(owner[keep], weights=energy[keep], minlength=n_frames)
    counts = np.bincount(owner[keep], minlength=n_frames)
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def pool_f0(f0: np.ndarray, hop: int, frame_hop: int, n_frames: int) -> np.ndarray:
    """Per video frame: voiced when most of its fine-rate frames are, then the geometric mean of those F0s."""
    owner = nearest_video_frame(len(f0), hop, frame_hop)
    keep = owner < n_frames
    owner, f0 = owner[keep], f0[keep]
    voiced = f0 > 0
    counts = np.bincount(owner, minlength=n_frames)
    voiced_counts = np.bincount(owner, weights=voiced, minlength=n_frames)
    log_sums = np.bincount(owner[voiced], weights=np.log(f0[voiced]), minlength=n_frames)
    pooled = np.exp(log_sums / np.maximum(voiced_counts, 1))
    return np.where(voiced_counts * 2 > counts, pooled, 0.0).astype(np.float32)


def quantize_pitch(f0: np.ndarray, f0_min: float, f0_max: float) -> np.ndarray:
    """uint8 levels: 0 unvoiced, 1..255 log-spaced from f0_min to f0_max (clipped)."""
    voiced = f0 > 0
    position = np.log(np.where(voiced, f0, f0_min) / f0_min) / np.log(f0_max / f0_min)
    levels = 1 + np.round(np.clip(position, 0, 1) * (N_LEVELS - 2))
    return np.where(voiced, levels, 0).astype(np.uint8)


def quantize_energy(energy: np.ndarray, energy_min: float, energy_max: float) -> np.ndarray:
    """uint8 levels 0..255 log-spaced between fixed bounds, so a level means the same loudness in every clip."""
    position = np.log(np.maximum(energy, energy_min) / energy_min) / np.log(energy_max / energy_min)
    return np.round(np.clip(position, 0, 1) * (N_LEVELS - 1)).astype(np.uint8)


def audio_features(audio: np.ndarray, n_frames: int, fps: float, params: dict | None = None) -> dict[str, np.ndarray]:
    """All audio features of a clip for its n_frames video frames (keys as in features.schema).

    `audio` is mono at params["sample_rate"]; `params` overrides AUDIO_DEFAULTS.
    """
    options = {**AUDIO_DEFAULTS, **(params or {})}
    rate, fine_hop = int(options["sample_rate"]), int(options["stft_hop"])
    hop = video_hop(rate, fps)
    audio = fit_to_frames(audio, n_frames, hop)
    mel = log_mel(audio, n_frames, hop, rate, int(options["mel_n_fft"]))
    f0_fine = pitch_track(audio, rate, fine_hop, options["f0_min"], options["f0_max"], options["f0_method"])
    f0 = pool_f0(f0_fine, fine_hop, hop, n_frames)
    energy = pool_energy(stft_energy(audio, int(options["stft_n_fft"]), fine_hop), fine_hop, hop, n_frames)
    return {
        "mel": mel,
        "mfcc": mfcc(mel),
        "f0": f0,
        "pitch": quantize_pitch(f0, options["f0_min"], options["f0_max"]),
        "energy_raw": energy,
        "energy": quantize_energy(energy, options["energy_min"], options["energy_max"]),
        "audio": audio,
    }
