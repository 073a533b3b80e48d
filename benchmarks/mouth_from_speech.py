"""How much of new speakers' lip motion can be told from their speech, learned from the training speakers?

    .venv/bin/python benchmarks/mouth_from_speech.py [--project .] [--window 2] [--alpha 1000]

Fits a ridge regression (scikit-learn) from each frame's audio features (the log-mel of `--window` frames
either side, standardised per clip, and the energy) to its lip points' displacement since the clip's first
frame (`features.parts.mouth_motion`, the head's motion left out; no intercept, so silence predicts no
motion rather than the training speakers' mean pose) on the training clips of a run, then
prints per evaluation set the mean lip-point error of that prediction beside the error of no motion at all
(the still photo), in pixels of a 256x256 crop like the mouth LMD. A ratio near 1 on unseen speakers says
that speech, as these training speakers speak, moves new people's lips little better than keeping them
still, so no model trained on them can bring its mouth LMD far below the still photo's. Run it in a
project after `kedro run --config real.yml` (it reads `data/05_model_input/`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from talking_face.evaluation.metrics import LMD_REFERENCE_SIZE
from talking_face.features.parts import MOUTH, mouth_motion

LIPS = slice(0, len(MOUTH))  # mouth_motion lists the lip points first, then the jaw


def speech_and_lips(path: str | Path, window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Audio features [T, (2 * window + 1) * 257], lip displacements [T, 40] (pixels) and the crop side."""
    with np.load(path) as clip:
        mel, energy, landmarks, size = clip["mel"], clip["energy"], clip["landmarks"], clip["frames"].shape[1]
    mel = (mel - mel.mean(0)) / (mel.std(0) + 1e-3)  # loudness and channel differ between recordings
    frames = np.concatenate([mel, energy[:, None].astype(np.float32)], axis=1)
    padded = np.pad(frames, ((window, window), (0, 0)), mode="edge")
    speech = np.concatenate([padded[k : k + len(frames)] for k in range(2 * window + 1)], axis=1)
    _, shifts = mouth_motion(landmarks)
    return speech, shifts[:, LIPS].reshape(len(frames), -1), size


def lip_error(predicted: np.ndarray, real: np.ndarray, size: int) -> float:
    """Mean distance between predicted and real lip points, pixels of a 256x256 crop."""
    distances = np.linalg.norm((predicted - real).reshape(len(real), -1, 2), axis=-1)
    return float(distances.mean() * LMD_REFERENCE_SIZE / size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=".")
    parser.add_argument("--window", type=int, default=2, help="audio frames either side of each frame")
    parser.add_argument("--alpha", type=float, default=1000.0, help="ridge penalty")
    args = parser.parse_args()
    inputs = Path(args.project) / "data/05_model_input"
    training = json.loads((inputs / "training_feature_paths.json").read_text())
    evaluation = json.loads((inputs / "evaluation_clips.json").read_text())

    def resolved(path: str) -> Path:
        return Path(path) if Path(path).is_absolute() else Path(args.project) / path

    speech, lips, _ = zip(*(speech_and_lips(resolved(path), args.window) for path in training))
    model = make_pipeline(StandardScaler(), Ridge(alpha=args.alpha, fit_intercept=False)).fit(np.concatenate(speech), np.concatenate(lips))
    rows = []
    for clip in evaluation:
        x, y, size = speech_and_lips(resolved(clip["path"]), args.window)
        rows.append({"set": f"{clip['split']}/{clip.get('corpus', '')}", "clips": 1,
                     "from speech": lip_error(model.predict(x), y, size), "no motion": lip_error(np.zeros_like(y), y, size)})  # fmt: skip
    table = pd.DataFrame(rows).groupby("set").agg({"clips": "sum", "from speech": "mean", "no motion": "mean"})
    table["ratio"] = table["from speech"] / table["no motion"]
    print(f"Lip-point error (pixels of a 256 crop) on {len(training)} training clips' speech, window +-{args.window}:")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
