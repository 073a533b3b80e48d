"""The lip-sync expert's inputs from a clip's frames and audio (`models.sync_expert`), shared by its training,
evaluation and any loss that scores generated frames with it.

Window `t` covers video frames t .. t + frames - 1 and the mel steps heard while they are shown: with 10 ms
steps centred on multiples of 10 ms, video frame t (shown over [t, t + 1) / fps) owns steps
t * k .. t * k + k - 1, k = mel_steps_per_frame.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

from talking_face.models.sync_expert import SyncExpertConfig, lower_face


def expert_mel(audio: np.ndarray, n_frames: int, sample_rate: int, fps: float, config: SyncExpertConfig) -> np.ndarray:
    """float32 [n_frames * k, n_mels]: log-mel in k steps per video frame (25 ms windows), normalised to zero
    mean and unit variance per band over the clip (a voice's and a microphone's colour carry nothing)."""
    hop = sample_rate / (fps * config.mel_steps_per_frame)
    if abs(hop - round(hop)) > 1e-6:
        raise ValueError(f"{sample_rate} Hz audio does not split into {config.mel_steps_per_frame} steps per frame at {fps:g} fps")
    hop, steps = int(round(hop)), n_frames * config.mel_steps_per_frame
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    audio = np.pad(audio[: steps * hop], (0, max(0, steps * hop - len(audio))))
    power = librosa.feature.melspectrogram(
        y=audio, sr=sample_rate, n_fft=int(0.025 * sample_rate), hop_length=hop, center=True, pad_mode="constant",
        n_mels=config.n_mels, fmax=sample_rate / 2,
    )  # fmt: skip
    mel = librosa.power_to_db(power[:, :steps], ref=1.0, amin=1e-10, top_db=80.0).T
    return ((mel - mel.mean(0)) / (mel.std(0) + 1e-5)).astype(np.float32)


def expert_faces(frames: np.ndarray, config: SyncExpertConfig) -> np.ndarray:
    """uint8 face crops [T, S, S, 3] -> float32 grey lower faces [T, face_height, face_width]."""
    images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        return lower_face(images, config).numpy()


def window_starts(n_frames: int, config: SyncExpertConfig) -> np.ndarray:
    """Every window start of a clip of `n_frames` frames (none when it is shorter than one window)."""
    return np.arange(max(0, n_frames - config.frames + 1))


def face_windows(faces: np.ndarray, starts: np.ndarray, config: SyncExpertConfig) -> np.ndarray:
    """[N, frames, H, W] windows of `expert_faces` output starting at `starts`."""
    return faces[np.asarray(starts)[:, None] + np.arange(config.frames)]


def mel_windows(mel: np.ndarray, starts: np.ndarray, config: SyncExpertConfig) -> np.ndarray:
    """[N, n_mels, mel_steps] windows of `expert_mel` output for the video windows at `starts`."""
    k = config.mel_steps_per_frame
    steps = np.asarray(starts)[:, None] * k + np.arange(config.mel_steps)
    return np.ascontiguousarray(mel[steps].transpose(0, 2, 1))
