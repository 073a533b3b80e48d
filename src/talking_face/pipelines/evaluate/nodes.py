"""Thin nodes over talking_face.evaluation: choose the test clips, generate and score them, report."""

from __future__ import annotations

import pandas as pd

from talking_face.evaluation import report
from talking_face.evaluation.blinks import RELATIVE_THRESHOLD
from talking_face.evaluation.run import ClipExample, evaluate_model, select_clips
from talking_face.evaluation.summary import metric_history, summarise
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.models.sync_expert import load_expert


def evaluation_clips(feature_summary: pd.DataFrame, feature_files: dict[str, str], params: dict) -> list[dict]:
    """The test clips of `params["splits"]` with a feature file: what the model (and the champion) is scored on."""
    return select_clips(feature_summary, feature_files, params["splits"], params.get("max_clips_per_split"))


def evaluate(
    model_state: dict, clips: list[dict], params: dict, expert_state: dict
) -> tuple[pd.DataFrame, dict[str, ClipExample]]:
    """Per-clip metrics of the model, the static baseline and the real video, the lip-sync expert's among
    them; frames of the first clips."""
    model, expert = TalkingFaceModel.from_state(model_state), load_expert(expert_state)
    result = evaluate_model(model, clips, params, n_examples=int(params["n_videos"]), expert=expert)
    return result.per_clip, result.examples


def summarise_evaluation(per_clip: pd.DataFrame, params: dict) -> tuple[dict, dict, str]:
    """The metrics file (per split: model, baseline and real means), the same as MLflow metrics, the table."""
    summary = summarise(per_clip, params["splits"])
    table = report.metrics_table(summary, params["splits"], report.wer_note(per_clip), params.get("table_title", ""))
    return summary, metric_history(summary), table


def render_examples(examples: dict[str, ClipExample], params: dict) -> tuple[dict, dict, dict, dict]:
    """Per example clip: the real | generated | baseline mp4 with audio, the CAM strip, the EAR plot and
    the lower-face strip."""
    metrics = params.get("metrics") or {}
    videos, strips, ear_plots, mouth_strips = {}, {}, {}, {}
    for clip_id, example in examples.items():
        frames = report.side_by_side(example, int(params["panel_size"]))
        videos[clip_id] = (frames, example.audio, example.fps, example.sample_rate)
        title = f"{clip_id}: real, generated, CAM attention"
        strips[clip_id] = report.attention_strip(example, title, int(params["strip_frames"]))
        threshold, min_frames = metrics.get("ear_threshold", RELATIVE_THRESHOLD), metrics.get("blink_min_frames", 2)
        ear_plots[clip_id] = report.ear_figure(example, f"{clip_id}: eye aspect ratio", threshold, min_frames)
        mouth_strips[clip_id] = report.mouth_strip(example, f"{clip_id}: the lower face, real above generated")
    return videos, strips, ear_plots, mouth_strips
