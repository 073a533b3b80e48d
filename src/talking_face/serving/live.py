"""Live generation: speech arriving in pieces (a microphone, a call) -> frames as soon as the audio each one
depends on has arrived, through the same per-frame loop as `animate` (`FaceAnimator`).

A frame's audio inputs are a window of `audio_window` frames of features around it, and the features of a
frame are analysed from the audio around its centre (the mel's FFT, the pitch tracker's filters). So frame t
can be made once the audio `lookahead_s` past its timestamp has arrived: the window's frames after t, two
frames of analysis context beyond them (measured: the pitch track then agrees with the whole clip's; one
frame is not always enough) and t's own frame. At 25 fps with the default 5-frame window that is 200 ms.

The features of the frames made ready by each arrival are analysed from that audio plus LEFT_MARGIN_FRAMES
before it, so they match the whole clip's features, which is what `animate` uses for a file: the stream
and the file give the same frames (up to float rounding of differently sized batches).

`gather_frames` > 1 waits for that many frames to be ready before analysing their audio: the analysis (its
margin, the pitch tracker) costs nearly as much for one frame as for several, so two frames at a time take
15% less CPU a frame in the live loop, for up to one frame period more latency on every other frame.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterator

import av
import numpy as np
import torch

from talking_face.features.audio import AUDIO_DEFAULTS, audio_features, video_hop
from talking_face.features.eyes import DEFAULT_BLINK_RATE
from talking_face.features.phonemes import speech_visemes
from talking_face.serving.animate import BATCH_FRAMES, FaceAnimator, GeneratedFrame, frame_count, stack_rows
from talking_face.serving.blinks import EyeControls
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.conditioning.tensors import audio_conditioning

# Audio analysed before the first new frame (320 ms): paid on every arrival, so kept short; with it the
# features equal those of 1 s of margin on GRID and CREMA-D clips (the pitch tracker's reach; 3 frames is not enough).
LEFT_MARGIN_FRAMES = 8
ANALYSIS_FRAMES = 2  # frames of audio analysed beyond the last window frame (mel FFT half-width, pitch filters)
# Audio the phoneme recogniser hears before the first new frame (1 s): it needs the words around a sound; even
# so a stream's visemes only approximate a file's, which the recogniser hears whole.
VISEME_LEFT_FRAMES = 25


class StreamingAudio:
    """Mono samples at the model's rate arriving in pieces -> the generator's audio inputs (AUDIO_KEYS,
    each [N, K, F]) of the next frames, as soon as their audio has arrived; `finish` gives the rest."""

    def __init__(
        self, params: dict, fps: float, window: int, device="cpu", left: int = LEFT_MARGIN_FRAMES,
        visemes: bool = False, gather_frames: int = 1,
    ):  # fmt: skip
        if gather_frames < 1:
            raise ValueError(f"gather_frames must be at least 1, got {gather_frames}")
        self.gather_frames = gather_frames
        self.options = {**AUDIO_DEFAULTS, **params}
        self.visemes = visemes
        self.fps, self.window, self.device, self.left = fps, window, device, left
        self.rate = int(self.options["sample_rate"])
        self.hop = video_hop(self.rate, fps)
        self.align = math.lcm(self.hop, int(self.options["stft_hop"])) // self.hop
        self.right = (window - 1 - window // 2) + ANALYSIS_FRAMES  # frames of audio needed after a frame
        self.buffer = np.zeros(0, dtype=np.float32)
        self.buffer_start = 0  # sample index of buffer[0]
        self.received = 0  # samples so far
        self.next_frame = 0

    @property
    def lookahead_s(self) -> float:
        """How much audio past a frame's timestamp must have arrived before the frame can be made."""
        return (self.right + 1) / self.fps

    def push(self, samples: np.ndarray) -> Iterator[dict[str, torch.Tensor]]:
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, dtype=np.float32)])
        self.received += len(samples)
        n_ready = self.received // self.hop - self.right
        if n_ready - self.next_frame >= self.gather_frames:
            yield from self._batches(n_ready, final=False)

    def finish(self) -> Iterator[dict[str, torch.Tensor]]:
        """The remaining frames, the audio ending where it stopped (zero-padded like a file's last frame)."""
        yield from self._batches(frame_count(self.received, self.rate, self.fps), final=True)

    def frame_ready_at(self, frame: int) -> int:
        """Samples that must have arrived for `frame` before the end of the audio is known."""
        return (frame + 1 + self.right) * self.hop

    def _batches(self, n_ready: int, final: bool) -> Iterator[dict[str, torch.Tensor]]:
        while self.next_frame < n_ready:
            first, last = self.next_frame, min(n_ready, self.next_frame + BATCH_FRAMES)
            start = max(0, first - self.left) // self.align * self.align
            stop = min(n_ready, last + self.right) if final else last + self.right
            segment = self.buffer[start * self.hop - self.buffer_start : stop * self.hop - self.buffer_start]
            features = audio_features(segment, stop - start, self.fps, self.options)
            if self.visemes:
                heard = max(0, first - VISEME_LEFT_FRAMES)
                speech = self.buffer[heard * self.hop - self.buffer_start : stop * self.hop - self.buffer_start]
                features["visemes"] = speech_visemes(speech, stop - heard, self.rate, self.fps)[start - heard :]
            rows = [audio_conditioning(features, t - start, self.window) for t in range(first, last)]
            self.next_frame = last
            yield stack_rows(rows, self.device)
        kept = max(self.left, VISEME_LEFT_FRAMES) if self.visemes else self.left
        keep_from = max(0, self.next_frame - kept) // self.align * self.align * self.hop
        if keep_from > self.buffer_start:
            self.buffer = self.buffer[keep_from - self.buffer_start :]
            self.buffer_start = keep_from


class LiveAnimation:
    """One photo's face animated for speech arriving in pieces: `push(samples)` yields the frames the audio
    so far allows, `finish()` the rest; frames come in order, from frame 0, at most `max_seconds` of them
    (the blink schedule's length; schedules are prefix-stable, so the blinks are those `animate` draws);
    `gather_frames` frames are made at a time (the module's docstring says why)."""

    def __init__(
        self,
        model: TalkingFaceModel,
        source_crop: np.ndarray,
        blink_rate: float = DEFAULT_BLINK_RATE,
        blink_seed: int = 0,
        max_seconds: float = 600.0,
        mouth_strength: float | None = None,
        gather_frames: int = 1,
    ):
        fps = float(model.features["fps"])
        eyes = EyeControls.for_model(model, source_crop, math.ceil(max_seconds * fps) + 1, blink_rate, blink_seed)
        self.animator = FaceAnimator(model, source_crop, eyes, mouth_strength)
        self.audio = StreamingAudio(model.features["audio"], fps, model.audio_window, self.animator.device,
                                    visemes=model.uses_visemes, gather_frames=gather_frames)  # fmt: skip

    def push(self, samples: np.ndarray) -> Iterator[GeneratedFrame]:
        for frames_audio in self.audio.push(samples):
            yield from self.animator.frames(frames_audio)

    def finish(self) -> Iterator[GeneratedFrame]:
        for frames_audio in self.audio.finish():
            yield from self.animator.frames(frames_audio)


class PcmDecoder:
    """Raw little-endian 16-bit PCM chunks (interleaved when several channels) at any rate -> mono float32
    at `rate`, through FFmpeg's resampler as `media.audio.read_audio` decodes files, state kept between
    chunks so chunk edges leave no trace."""

    def __init__(self, in_rate: int, channels: int, rate: int):
        if not 8000 <= in_rate <= 192000:
            raise ValueError(f"sample rate {in_rate} Hz is not supported (8000 to 192000)")
        if channels not in (1, 2):
            raise ValueError(f"{channels} channels are not supported (1 or 2)")
        self.in_rate, self.channels = in_rate, channels
        self.layout = "mono" if channels == 1 else "stereo"
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self.samples_in = 0

    @property
    def frame_bytes(self) -> int:
        return 2 * self.channels

    def decode(self, data: bytes) -> np.ndarray:
        if len(data) % self.frame_bytes:
            raise ValueError(f"audio chunk of {len(data)} bytes is not whole {self.channels}-channel 16-bit samples")
        if not data:
            return np.zeros(0, dtype=np.float32)
        samples = np.frombuffer(data, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=self.layout)
        frame.sample_rate, frame.pts, frame.time_base = self.in_rate, self.samples_in, Fraction(1, self.in_rate)
        self.samples_in += samples.shape[1] // self.channels
        return self._collect(self.resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return self._collect(self.resampler.resample(None))

    @staticmethod
    def _collect(frames) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]).astype(np.float32)
