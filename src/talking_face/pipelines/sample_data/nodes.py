"""Thin nodes over `talking_face.sample`: parameters in, clips and a figure out."""

from __future__ import annotations

from typing import Any, Callable

from matplotlib.figure import Figure

from talking_face.sample import clip_makers, sample_plan
from talking_face.sample.contact_sheet import contact_sheet


def generate_sample_clips(params: dict[str, Any]) -> dict[str, Callable[[], tuple]]:
    """Partition id "<speaker>/<clip>" -> clip maker; the partitioned dataset renders and saves one at a time."""
    plan = sample_plan(
        n_speakers=params["n_speakers"],
        clips_per_speaker=params["clips_per_speaker"],
        seconds=params["seconds"],
        seed=params["seed"],
        frame_size=params["frame_size"],
        blink_rate=tuple(params["blink_rate"]),
    )
    return clip_makers(plan, fps=params["fps"], sample_rate=params["sample_rate"])


def draw_contact_sheet(sample_clips: dict[str, Callable[[], tuple]], params: dict[str, Any]) -> Figure:
    """Frames of each speaker's first clip, read back from the saved videos."""
    first_per_speaker: dict[str, str] = {}
    for partition_id in sorted(sample_clips):
        first_per_speaker.setdefault(partition_id.split("/")[0], partition_id)
    clips = {partition_id: sample_clips[partition_id]() for partition_id in first_per_speaker.values()}
    return contact_sheet(clips, frames_per_clip=params["contact_sheet_frames"])
