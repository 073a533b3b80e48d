"""The built-in sample dataset: a real photo animated to sentences spoken by espeak-ng (no Kedro in here)."""

from talking_face.sample.dataset import (
    ClipSpec,
    SpeakerVariant,
    clip_makers,
    make_clip,
    render_clip,
    sample_plan,
    speaker_variants,
)

__all__ = ["ClipSpec", "SpeakerVariant", "clip_makers", "make_clip", "render_clip", "sample_plan", "speaker_variants"]
