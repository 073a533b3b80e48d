"""Training the mouth opening (models.mouth.MouthOpening): each training frame's speech window to its real
inner-lip gap over the mouth width (`evaluation.sync.mouth_opening`, the measure evaluation scores), on
every training person; a first training without a held-out fifth of the people fits the gain on them and
gives the figures.

    state, report = train_mouth_opening([(feature_file, speaker), ...], {"steps": 3000}, window=5, seed=7)

A one-hidden-layer network on a few frames of mel and MFCC trains in seconds on a CPU, so it runs in the
driver, not under Ray Train. The gain: an L1 fit regresses toward the mean (where speech does not tell the
exact shape, a half-open mouth is closest on average), so on the held-out people the prediction's spread
is stretched to the real one's, the median over their clips.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from tqdm.auto import tqdm

from talking_face.conditioning.tensors import scaled_mel, scaled_mfcc, window
from talking_face.evaluation.sync import mouth_opening
from talking_face.models.mouth import MouthOpening, MouthOpeningConfig

logger = logging.getLogger(__name__)

DEFAULTS = {"steps": 3000, "batch_size": 256, "lr": 0.001, "weight_decay": 0.0001, "held_out_fraction": 0.2,
            "closed_quantile": 0.1, "max_gain": 4.0, "network": {}}  # fmt: skip


def clip_rows(path: str, frames: int) -> tuple[torch.Tensor, np.ndarray]:
    """A feature file's input rows [T, F] (`frames`-frame speech windows, as generation builds them) and its
    real mouth opening [T]; frames whose landmarks give no finite opening are left out."""
    with np.load(path) as data:
        mel, mfcc, landmarks = data["mel"], data["mfcc"], data["landmarks"]
    length = len(mel)
    index = np.stack([window(t, length, frames) for t in range(length)])
    rows = MouthOpening.inputs(scaled_mel(mel[index]), scaled_mfcc(mfcc[index]))
    opening = mouth_opening(landmarks[:length])
    keep = np.isfinite(opening)
    return rows[torch.from_numpy(keep)], opening[keep]


def held_out_people(speakers: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded `fraction` of the distinct speakers (at least one, none when there is only one)."""
    people = sorted(set(speakers))
    if len(people) < 2:
        return set()
    count = min(len(people) - 1, max(1, round(fraction * len(people))))
    return set(np.random.default_rng(seed).permutation(people)[:count].tolist())


def per_clip_figures(model: MouthOpening, clips: list[tuple[torch.Tensor, np.ndarray]]) -> tuple[float, float]:
    """Mean correlation of the prediction with the real opening over `clips`, and the median ratio of
    their spreads (the prediction's over the real one's), both nan without a clip that moves."""
    correlations, ratios = [], []
    with torch.no_grad():
        for rows, real in clips:
            predicted = model.raw(rows).numpy()
            if len(real) > 2 and real.std() > 1e-6 and predicted.std() > 1e-9:
                correlations.append(float(np.corrcoef(predicted, real)[0, 1]))
                ratios.append(float(predicted.std() / real.std()))
    return (float(np.mean(correlations)), float(np.median(ratios))) if ratios else (float("nan"), float("nan"))


def fit(rows: torch.Tensor, target: torch.Tensor, params: dict, window_frames: int, seed: int, label: str) -> MouthOpening:
    """A MouthOpening trained by L1 on `rows` -> `target`, its inputs standardised on them (gain 1)."""
    torch.manual_seed(seed)
    model = MouthOpening(MouthOpeningConfig(window=window_frames, **params["network"]))
    model.mean.copy_(rows.mean(0))
    model.scale.copy_(rows.std(0) + 1e-6)
    model.closed.fill_(float(torch.quantile(target, float(params["closed_quantile"]))))
    optimizer = torch.optim.Adam(model.net.parameters(), lr=float(params["lr"]), weight_decay=float(params["weight_decay"]))
    generator = torch.Generator().manual_seed(seed)
    model.train()
    progress = tqdm(range(int(params["steps"])), desc=f"mouth opening: {label}", unit="step")
    for step in progress:
        batch = torch.randint(0, len(rows), (int(params["batch_size"]),), generator=generator)
        loss = (model.raw(rows[batch]) - target[batch]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 500 == 0:
            progress.set_postfix(l1=f"{loss.item():.4f}")
    return model.eval()


def stacked(clips: list[tuple[torch.Tensor, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([rows for rows, _ in clips]), torch.from_numpy(np.concatenate([o for _, o in clips])).float()


def train_mouth_opening(
    clips: list[tuple[str, str]], params: dict, window_frames: int, seed: int
) -> tuple[dict, dict]:
    """`clips`: (feature file, speaker) of the training split. The MouthOpening trained on every clip, with
    the gain fitted by a first training without the held-out people, and a report (people, frames, the
    held-out people's correlation and spread before the gain)."""
    params = {**DEFAULTS, **(params or {})}
    if not clips:
        raise ValueError("mouth opening: no training clips")
    held_out = held_out_people([speaker for _, speaker in clips], float(params["held_out_fraction"]), seed)
    read = [(speaker, clip_rows(path, window_frames)) for path, speaker in tqdm(clips, desc="mouth opening: read clips", unit="clip")]
    test = [clip for speaker, clip in read if speaker in held_out]
    correlation, spread = float("nan"), float("nan")
    if test:
        first = fit(*stacked([clip for speaker, clip in read if speaker not in held_out]), params, window_frames, seed, "held-out fit")
        correlation, spread = per_clip_figures(first, test)
    max_gain = float(params["max_gain"])
    gain = 1.0 if math.isnan(spread) else float(np.clip(1.0 / max(spread, 1e-6), 1.0 / max_gain, max_gain))
    rows, target = stacked([clip for _, clip in read])
    model = fit(rows, target, params, window_frames, seed, "train")
    model.gain.fill_(gain)
    report = {
        "people": len({speaker for _, speaker in clips}), "held_out_people": len(held_out), "frames": int(len(rows)),
        "held_out_clips": len(test), "held_out_correlation": correlation, "held_out_spread_before_gain": spread,
        "gain": gain, "closed_opening": float(model.closed),
    }  # fmt: skip
    logger.info("mouth opening: held-out people r %.3f, spread %.2f of the real one's -> gain %.2f", correlation, spread, gain)
    return model.state(), report
