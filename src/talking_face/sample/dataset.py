"""The built-in sample corpus: speaker variants of one photo, each saying sentences in its own espeak-ng voice.

Everything is derived from one integer seed through numpy SeedSequences, so the same parameters always give
bit-identical clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from talking_face.features.eyes import blink_closure, blink_onsets
from talking_face.features.phonemes import Phone
from talking_face.sample.face import FaceLook, face_rig
from talking_face.sample.motion import head_sway, mouth_opening
from talking_face.sample.speech import Voice, frame_loudness, synthesize


@dataclass(frozen=True)
class SpeakerVariant:
    """One stand-in speaker: how the photo is shown, how the voice sounds, how often the eyes blink."""

    name: str
    look: FaceLook
    voice: Voice
    blink_rate: float  # blinks per second


@dataclass(frozen=True)
class ClipSpec:
    """One clip of the corpus: who speaks, its name and its own seed."""

    speaker: SpeakerVariant
    name: str
    seed: int
    seconds: float

    @property
    def partition_id(self) -> str:
        return f"{self.speaker.name}/{self.name}"


@dataclass(frozen=True)
class RenderedClip:
    """A clip with the per-frame ground truth it was animated from."""

    frames: np.ndarray  # uint8 [T, H, W, 3] RGB
    audio: np.ndarray  # float32 mono
    loudness: np.ndarray  # float32 [T], 1.0 = the loudest frame of sample speech
    opening: np.ndarray  # float32 [T] mouth opening 0..1
    phones: list[Phone]  # what was said, ARPAbet with times (s)
    closure: np.ndarray  # float32 [T] eye closure 0..1
    blink_times: np.ndarray  # blink onsets (s)


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(keys)))


def speaker_variants(
    n_speakers: int, seed: int, frame_size: int = 256, blink_rate: tuple[float, float] = (0.2, 0.5)
) -> list[SpeakerVariant]:
    """`n_speakers` looks and voices: alternately mirrored, reframed, recoloured; male and female voices."""
    speakers = []
    for index in range(n_speakers):
        rng = _rng(seed, index)
        warmth = float(rng.uniform(-0.08, 0.1))  # white balance along the warm-cool axis, as cameras vary
        brightness = float(rng.uniform(0.92, 1.08))
        high_voice = index % 2 == 1
        look = FaceLook(
            frame_size=frame_size,
            face_width=float(rng.uniform(0.38, 0.5)),
            offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.06, 0.02))),
            tilt_deg=float(rng.uniform(-4.0, 4.0)),
            mirror=index % 2 == 1,
            channel_gains=(brightness * (1 + warmth), brightness, brightness * (1 - warmth)),
            saturation=float(rng.uniform(0.7, 1.25)),
            gamma=float(rng.uniform(0.85, 1.15)),
        )
        voice = Voice(
            variant=f"f{rng.integers(1, 6)}" if high_voice else f"m{rng.integers(1, 8)}",
            pitch=int(rng.integers(45, 76) if high_voice else rng.integers(25, 56)),
            pitch_range=int(rng.integers(35, 76)),
            rate=int(rng.integers(145, 186)),
        )
        speakers.append(SpeakerVariant(f"spk{index + 1:02d}", look, voice, float(rng.uniform(*blink_rate))))
    return speakers


def sample_plan(
    n_speakers: int = 6,
    clips_per_speaker: int = 4,
    seconds: float = 3.0,
    seed: int = 7,
    frame_size: int = 256,
    blink_rate: tuple[float, float] = (0.2, 0.5),
) -> list[ClipSpec]:
    """Every clip of the corpus, speaker by speaker; clip seeds come from (seed, speaker, clip)."""
    return [
        ClipSpec(speaker, f"clip{clip + 1:02d}", int(_rng(seed, index, clip).integers(2**31)), float(seconds))
        for index, speaker in enumerate(speaker_variants(n_speakers, seed, frame_size, tuple(blink_rate)))
        for clip in range(clips_per_speaker)
    ]


def render_clip(speaker: SpeakerVariant, seed: int, seconds: float, fps: int = 25, sample_rate: int = 16000) -> RenderedClip:
    """Speaks the sentences, then animates the speaker's photo frame by frame to match their phonemes."""
    speech = synthesize(seconds, seed, speaker.voice, sample_rate)
    n_frames = int(round(seconds * fps))
    opening = mouth_opening(speech.phones, n_frames, fps)
    motion_rng = _rng(seed, 1)
    onsets = blink_onsets(seconds, speaker.blink_rate, motion_rng)
    closure = blink_closure(n_frames, fps, onsets, motion_rng)
    shifts, angles = head_sway(n_frames, fps, motion_rng)
    rig = face_rig(speaker.look)
    frames = np.stack([rig.render(opening[t], closure[t], tuple(shifts[t]), float(angles[t])) for t in range(n_frames)])
    loudness = frame_loudness(speech.samples, sample_rate, fps, n_frames)
    return RenderedClip(frames, speech.samples, loudness, opening, speech.phones, closure, onsets)


def make_clip(
    speaker_variant: SpeakerVariant, seed: int, seconds: float, fps: int = 25, sample_rate: int = 16000
) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 [T, H, W, 3], audio float32) of one clip; the same arguments give identical arrays."""
    clip = render_clip(speaker_variant, seed, seconds, fps, sample_rate)
    return clip.frames, clip.audio


def clip_makers(plan: list[ClipSpec], fps: int = 25, sample_rate: int = 16000) -> dict[str, Callable[[], tuple]]:
    """Partition id -> a function rendering that clip as (frames, audio, fps, sample_rate, phones) when called.

    Clips are made one at a time as a consumer calls them, so memory holds one clip; a progress bar counts them.
    """
    progress = tqdm(total=len(plan), desc="sample clips", unit="clip")

    def maker(spec: ClipSpec) -> Callable[[], tuple]:
        def make() -> tuple:
            clip = render_clip(spec.speaker, spec.seed, spec.seconds, fps, sample_rate)
            progress.update(1)
            if progress.n >= progress.total:
                progress.close()
            return clip.frames, clip.audio, fps, sample_rate, clip.phones

        return make

    return {spec.partition_id: maker(spec) for spec in plan}
