"""The mouth strength a trained model generates at, chosen on held-out clips of its own training speakers.

    calibration = calibrate_mouth_strength(model, clips, strengths=(1.0, 0.75, 0.5, 0.25))
    model.mouth_strength = calibration.strength

A GAN learns to open the mouth as boldly as real mouths open; where speech does not tell the exact shape
and moment, a bold mouth at the wrong moment is further from the real frame than a small one, and further
than the still photo. Each strength scales the composite mask on the mouth region (`features.parts`), so
the frame moves from the photo (0) to the trained model's own (1); the eyes keep their blinks. The choice:
the largest strength whose SSIM and PSNR on the clips reach the still photo's (the most mouth motion that
costs no image quality), else the one with the best SSIM. The clips must not be the ones the model is
judged on: training uses its speakers' held-out sentences (the seen split), the report the unseen people.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from talking_face.conditioning.bundle import TalkingFaceModel, check_mouth_strength
from talking_face.evaluation.clip import DEFAULT_PARAMS, reference_metrics, static_baseline
from talking_face.evaluation.face_track import track_landmarks
from talking_face.evaluation.run import generate_clip, load_clip_media

logger = logging.getLogger(__name__)

METRICS = ("ssim", "psnr", "lmd_mouth")


@dataclass
class Calibration:
    strength: float
    table: pd.DataFrame  # one row per strength tried: mean ssim, psnr, lmd_mouth, the photo's, reaches_photo
    reason: str  # one line: why this strength


def calibrate_mouth_strength(
    model: TalkingFaceModel, clips: list[dict], strengths: tuple[float, ...], params: dict | None = None
) -> Calibration:
    """Generates every clip of `clips` (from `evaluation.run.select_clips`) at each of `strengths` and picks
    one (module docstring). `params` overrides `evaluation.clip.DEFAULT_PARAMS`. The model comes back with
    its own strength unchanged; a model without a parts-capped mask, or no clips, keeps it."""
    strengths = sorted({check_mouth_strength(value) for value in strengths}, reverse=True)
    columns = ["strength", *METRICS, *(f"photo_{name}" for name in METRICS), "reaches_photo"]
    if not model.generator.limits_mask or not clips or not strengths:
        why = "no calibration clips" if model.generator.limits_mask else "its mask is not capped to the moving parts"
        reason = f"kept mouth strength {model.mouth_strength:g}: {why}"
        return Calibration(model.mouth_strength, pd.DataFrame(columns=columns), reason)
    metric_params = {**DEFAULT_PARAMS, **((params or {}).get("metrics") or {})}
    trained_strength, rows = model.mouth_strength, []
    model.eval()
    try:
        for clip in tqdm(clips, desc="calibrate mouth strength", unit="clip"):
            rows.extend(_clip_rows(model, clip, strengths, metric_params))
    finally:
        model.mouth_strength = trained_strength
    per_clip = pd.DataFrame(rows)
    table = per_clip.groupby("strength", sort=False)[list(columns[1:-1])].mean().reset_index()
    table["reaches_photo"] = (table["ssim"] >= table["photo_ssim"]) & (table["psnr"] >= table["photo_psnr"])
    passing = table[table["reaches_photo"]]
    if len(passing):
        strength = float(passing["strength"].max())
        reason = f"mouth strength {strength:g}: the largest whose SSIM and PSNR reach the still photo's"
    else:
        strength = float(table.loc[table["ssim"].idxmax(), "strength"])
        reason = f"mouth strength {strength:g}: none reaches the still photo's SSIM and PSNR; the best SSIM"
    reason += f" on {len(clips)} held-out clip{'s' * (len(clips) != 1)} of the training speakers"
    logger.info("%s", reason)
    return Calibration(strength, table[columns], reason)


def _clip_rows(model: TalkingFaceModel, clip: dict, strengths: list[float], params: dict) -> list[dict]:
    """One row per strength: the clip generated at it, scored against the real frames beside the photo."""
    real, audio, fps = load_clip_media(clip["path"])
    rate = int(round(len(audio) * fps / len(real)))  # a feature file holds exactly T frames' worth of audio
    params, every = {**params, "fps": fps}, params["redetect_every"]
    real_track = track_landmarks(real, every)
    baseline = static_baseline(real[0], len(real))
    photo = reference_metrics(real, baseline, params, real_track, track_landmarks(baseline, every))
    rows = []
    for strength in strengths:
        model.mouth_strength = strength
        generated, _ = generate_clip(model, real[0], audio, rate, fps, clip["clip_id"])
        count = min(len(generated), len(real))
        frames, track = real[:count], real_track if count == len(real) else track_landmarks(real[:count], every)
        scores = reference_metrics(frames, generated[:count], params, track, track_landmarks(generated[:count], every))
        rows.append({"strength": strength, **{key: scores[key] for key in METRICS},
                     **{f"photo_{key}": photo[key] for key in METRICS}})  # fmt: skip
    return rows


def calibration_figure(calibration: Calibration) -> Figure:
    """SSIM, PSNR and mouth LMD against the mouth strength, the still photo's level dashed, the choice marked."""
    figure = Figure(figsize=(10, 3.2), layout="constrained")
    table = calibration.table.sort_values("strength")
    for axis, (name, label) in zip(figure.subplots(1, 3), (("ssim", "SSIM ↑"), ("psnr", "PSNR (dB) ↑"), ("lmd_mouth", "mouth LMD ↓"))):
        axis.plot(table["strength"], table[name], "o-", label="model")
        if len(table):
            axis.axhline(float(np.mean(table[f"photo_{name}"])), color="grey", linestyle="--", label="still photo")
        axis.axvline(calibration.strength, color="tab:red", alpha=0.4, label="chosen")
        axis.set_xlabel("mouth strength")
        axis.set_title(label)
    figure.axes[0].legend(fontsize="small")
    figure.suptitle(calibration.reason, fontsize="medium")
    return figure
