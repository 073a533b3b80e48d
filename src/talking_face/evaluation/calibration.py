"""The mouth strength a trained model generates at, chosen on held-out clips of its own training speakers.

    calibration = calibrate_mouth_strength(model, clips, strengths=(1.0, 0.75, 0.5, 0.25), judge=judge)
    model.mouth_strength = calibration.strength

A GAN learns to open the mouth as boldly as real mouths open; where speech does not tell the exact shape
and moment, a bold mouth at the wrong moment is further from the real frame than a small one. Each
strength scales the composite mask on the mouth region (`features.parts`), so the frame moves from the
photo (0) to the trained model's own (1); the eyes keep their blinks. Every strength is scored on the
clips as evaluation scores (image fidelity against the real frames beside the still photo's, and talking:
the lip-sync expert, phoneme sync and motion agreement beside the real video's), and `judge` (the promotion
gate's checks, from the node) counts the checks each passes: the strength that passes most wins; on a tie
the one whose motion amplitude is nearest the real mouth's (1), else the larger. With a mouth layer
(`models.mouth`) each strength scales the layer's opening beyond the photo's instead. The clips must not be the ones the model is judged on: training
uses its speakers' held-out sentences (the seen split), the report the unseen people.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from talking_face.conditioning.bundle import TalkingFaceModel, check_mouth_strength
from talking_face.evaluation.clip import DEFAULT_PARAMS, reference_metrics, static_baseline, talking_metrics
from talking_face.evaluation.face_track import track_landmarks
from talking_face.evaluation.run import generate_clip, load_clip_media
from talking_face.features.phonemes import speech_openness
from talking_face.models.sync_expert import SyncExpert

logger = logging.getLogger(__name__)

METRICS = ("ssim", "psnr", "lmd_mouth", "motion_corr", "motion_amplitude", "phone_sync_corr", "expert_confidence")
REFERENCE = {"photo": ("ssim", "psnr", "lmd_mouth"), "real": ("phone_sync_corr", "expert_confidence")}
# judge: a summary {"calibration.<model|baseline|real>.<metric>": value} -> the gate checks it passes, of all
Judge = Callable[[dict[str, float]], tuple[int, int]]
SET_NAME = "calibration"


@dataclass
class Calibration:
    strength: float
    table: pd.DataFrame  # one row per strength tried: mean ssim, psnr, lmd_mouth, the photo's, reaches_photo
    reason: str  # one line: why this strength


def calibrate_mouth_strength(
    model: TalkingFaceModel, clips: list[dict], strengths: tuple[float, ...], judge: Judge,
    params: dict | None = None, expert: SyncExpert | None = None,
) -> Calibration:
    """Generates every clip of `clips` (from `evaluation.run.select_clips`) at each of `strengths` and picks
    one (module docstring). `params` overrides `evaluation.clip.DEFAULT_PARAMS`; `expert` is the lip-sync
    expert. The model comes back with its own strength unchanged; a model without a parts-capped mask, or
    no clips, keeps it."""
    strengths = sorted({check_mouth_strength(value) for value in strengths}, reverse=True)
    references = [f"{system}_{name}" for system, names in REFERENCE.items() for name in names]
    columns = ["strength", *METRICS, *references, "checks_passed", "checks"]
    if not model.generator.limits_mask or not clips or not strengths:
        why = "no calibration clips" if model.generator.limits_mask else "its mask is not capped to the moving parts"
        reason = f"kept mouth strength {model.mouth_strength:g}: {why}"
        return Calibration(model.mouth_strength, pd.DataFrame(columns=columns), reason)
    metric_params = {**DEFAULT_PARAMS, **((params or {}).get("metrics") or {})}
    trained_strength, rows = model.mouth_strength, []
    model.eval()
    try:
        for clip in tqdm(clips, desc="calibrate mouth strength", unit="clip"):
            rows.extend(_clip_rows(model, clip, strengths, metric_params, expert))
    finally:
        model.mouth_strength = trained_strength
    per_clip = pd.DataFrame(rows)
    measured = [column for column in (*METRICS, *references) if column in per_clip]  # the expert's need an expert
    table = per_clip.groupby("strength", sort=False)[measured].mean(numeric_only=True).reset_index()
    verdicts = [judge(_as_summary(row)) for row in table.to_dict("records")]
    table["checks_passed"] = [passed for passed, _ in verdicts]
    table["checks"] = [total for _, total in verdicts]
    # On a tie, the mouth whose motion is nearest the real one's in size, else the largest.
    table["amplitude_gap"] = (table["motion_amplitude"] - 1).abs() if "motion_amplitude" in table else 0.0
    best = table.sort_values(["checks_passed", "amplitude_gap", "strength"], ascending=[False, True, False]).iloc[0]
    table = table.drop(columns="amplitude_gap")
    strength = float(best["strength"])
    reason = (f"mouth strength {strength:g}: passes {int(best['checks_passed'])} of {int(best['checks'])} gate checks, "
              f"the most of any strength (on a tie, the motion amplitude nearest the real mouth's)")  # fmt: skip
    reason += f" on {len(clips)} held-out clip{'s' * (len(clips) != 1)} of the training speakers"
    logger.info("%s", reason)
    return Calibration(strength, table[[column for column in columns if column in table]], reason)


def _as_summary(row: dict) -> dict[str, float]:
    """One strength's row as the summary the gate reads: the model's metrics, the photo's and the real's."""
    summary = {f"{SET_NAME}.model.{name}": row[name] for name in METRICS if name in row}
    for system, names in REFERENCE.items():
        label = "baseline" if system == "photo" else system
        summary.update({f"{SET_NAME}.{label}.{name}": row[f"{system}_{name}"] for name in names if f"{system}_{name}" in row})
    return {key: float(value) for key, value in summary.items() if value == value}


def _clip_rows(
    model: TalkingFaceModel, clip: dict, strengths: list[float], params: dict, expert: SyncExpert | None
) -> list[dict]:
    """One row per strength: the clip generated at it, scored against the real frames beside the photo and
    the real video."""
    real, audio, fps = load_clip_media(clip["path"])
    rate = int(round(len(audio) * fps / len(real)))  # a feature file holds exactly T frames' worth of audio
    params, every = {**params, "fps": fps, "sample_rate": rate}, params["redetect_every"]
    real_track = track_landmarks(real, every)
    speech = speech_openness(audio, len(real), rate, fps)
    baseline = static_baseline(real[0], len(real))
    photo = reference_metrics(real, baseline, params, real_track, track_landmarks(baseline, every))
    truth = talking_metrics(real, audio, params, real_track, speech, expert)
    fixed = {**{f"photo_{key}": photo[key] for key in REFERENCE["photo"]},
             **{f"real_{key}": truth[key] for key in REFERENCE["real"] if key in truth}}  # fmt: skip
    rows = []
    for strength in strengths:
        model.mouth_strength = strength
        generated, _ = generate_clip(model, real[0], audio, rate, fps, clip["clip_id"])
        count = min(len(generated), len(real))
        frames, track = real[:count], real_track if count == len(real) else track_landmarks(real[:count], every)
        generated_track = track_landmarks(generated[:count], every)
        scores = {**reference_metrics(frames, generated[:count], params, track, generated_track),
                  **talking_metrics(generated[:count], audio, params, generated_track, speech[:count], expert)}  # fmt: skip
        rows.append({"strength": strength, **{key: scores[key] for key in METRICS if key in scores}, **fixed})
    return rows


def calibration_figure(calibration: Calibration) -> Figure:
    """SSIM, PSNR and mouth LMD against the mouth strength, the still photo's level dashed, the choice marked."""
    figure = Figure(figsize=(16, 3.2), layout="constrained")
    table = calibration.table.sort_values("strength")
    panels = (("ssim", "SSIM ↑"), ("psnr", "PSNR (dB) ↑"), ("lmd_mouth", "mouth LMD ↓"), ("motion_corr", "motion r ↑"),
              ("expert_confidence", "expert confidence ↑"))  # fmt: skip
    for axis, (name, label) in zip(figure.subplots(1, len(panels)), panels):
        if name not in table:
            axis.set_title(f"{label}: not measured")
            continue
        axis.plot(table["strength"], table[name], "o-", label="model")
        for system, style in (("photo", "still photo"), ("real", "real video")):
            if f"{system}_{name}" in table and len(table):
                axis.axhline(float(np.mean(table[f"{system}_{name}"])), color="grey", linestyle="--" if system == "photo" else ":", label=style)
        axis.axvline(calibration.strength, color="tab:red", alpha=0.4, label="chosen")
        axis.set_xlabel("mouth strength")
        axis.set_title(label)
    figure.axes[0].legend(fontsize="small")
    figure.suptitle(calibration.reason, fontsize="medium")
    return figure
