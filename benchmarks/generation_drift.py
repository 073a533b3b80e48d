"""Does free-running generation drift? Generates long speech from one source frame with a trained model and
prints, per 5-second window, how far the frames are from the source and how much the lower face moves, and
over the whole length the blinks (count, rate and its 95% interval: a 3-second clip holds too few to judge a
rate by).

    .venv/bin/python benchmarks/generation_drift.py [--model data/06_models/talking_face_model.pt]
        [--clips 'data/04_feature/clips/spk03_*.npz'] [--repeat 3]

The audio is the given feature files' speech, concatenated `--repeat` times; the source is the first
frame of the first clip. A model that drifts shows a distance that grows window after window (faces
smearing) and lower-face motion that dies out; a stable one shows both flat.
"""

from __future__ import annotations

import argparse
import glob

import numpy as np

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.evaluation import blinks
from talking_face.evaluation.face_track import track_landmarks
from talking_face.features.eyes import eye_aspect_ratio
from talking_face.serving.animate import animate

WINDOW_SECONDS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="data/06_models/talking_face_model.pt")
    parser.add_argument("--clips", default="data/04_feature/clips/spk03_*.npz")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = TalkingFaceModel.load(args.model)
    clips = [dict(np.load(path)) for path in sorted(glob.glob(args.clips))]
    if not clips:
        raise SystemExit(f"{args.clips}: no feature files match")
    audio = np.concatenate([clip["audio"] for clip in clips] * args.repeat)
    source = clips[0]["frames"][0]
    images = np.stack([frame.image for frame in animate(model, source, audio)])
    frames = images.astype(np.float32)
    window = int(WINDOW_SECONDS * float(model.features["fps"]))
    size = model.image_size
    lower_face = frames[:, size * 5 // 8 :, size // 4 : size * 3 // 4].mean(axis=(1, 2, 3))
    print(f"{len(frames)} frames from {len(audio) / int(model.features['audio']['sample_rate']):.0f} s of speech")
    print("| window (s) | mean abs difference from the source | lower-face brightness std |\n|---|---:|---:|")
    for start in range(0, len(frames) - window + 1, window):
        distance = np.abs(frames[start : start + window] - source).mean() / 255
        motion = lower_face[start : start + window].std()
        print(f"| {start // window * WINDOW_SECONDS}-{(start // window + 1) * WINDOW_SECONDS} | {distance:.4f} | {motion:.2f} |")
    fps, seconds = float(model.features["fps"]), len(images) / float(model.features["fps"])
    ear = blinks.relative_ear(eye_aspect_ratio(track_landmarks(images, redetect_every=5).landmarks))
    count = len(blinks.detect_blinks(ear, blinks.RELATIVE_THRESHOLD, blinks.BLINK_MIN_FRAMES))
    low, high = blinks.rate_interval(count, seconds)
    print(f"blinks: {count} in {seconds:.0f} s = {count / seconds:.2f}/s (95% interval {low:.2f}-{high:.2f}/s)")


if __name__ == "__main__":
    main()
