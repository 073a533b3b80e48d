"""Can the sync measures be trusted? Checks them on real video before they judge any model: per clip, the
phoneme-timed sync's lag and strength, and the lip-sync expert's offset and confidence on the clip as
recorded, with its audio half a second late, and on the still first frame.

    .venv/bin/python benchmarks/sync_check.py --clips 'data/04_feature/clips/grid_*.npz' \
        [--expert data/06_models/sync_expert.pt] [--shift 0.5]

Reads feature files (their face crops, landmarks and audio), so it sees what evaluation sees. A measure
to trust finds the real clips in sync (lag or offset within a frame of 0), scores them well above the
shifted audio, and scores the still frame near 0.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np
import torch

from talking_face.evaluation import lip_sync, sync
from talking_face.features.phonemes import speech_openness
from talking_face.models.sync_expert import load_expert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", required=True, help="glob of feature files")
    parser.add_argument("--expert", default=None, help="a lip-sync expert file (data/06_models/sync_expert.pt)")
    parser.add_argument("--shift", type=float, default=0.5, help="seconds the audio is delayed for the out-of-sync score")
    args = parser.parse_args()
    paths = sorted(glob.glob(args.clips))
    if not paths:
        raise SystemExit(f"{args.clips}: no feature files match")
    expert = load_expert(torch.load(args.expert, map_location="cpu", weights_only=False)) if args.expert else None
    print("| clip | phoneme lag | phoneme r | expert offset | expert conf. | conf., audio +%gs | conf., still frame |" % args.shift)
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for path in paths:
        with np.load(path) as archive:
            if "error" in archive.files:  # a clip the features step rejected
                print(f"| {Path(path).stem} | rejected: {archive['error']} |")
                continue
            frames, landmarks, audio, fps = archive["frames"], archive["landmarks"], archive["audio"], float(archive["fps"])
        rate = int(round(len(audio) * fps / len(frames)))
        phoneme = sync.av_sync(sync.mouth_opening(landmarks), speech_openness(audio, len(frames), rate, fps))
        row = {"lag": phoneme.lag, "r": phoneme.correlation}
        if expert is not None:
            played = lip_sync.expert_sync(expert, frames, audio, rate, fps)
            late = lip_sync.expert_sync(expert, frames, lip_sync.delayed(audio, args.shift, rate), rate, fps)
            still = lip_sync.expert_sync(expert, np.repeat(frames[:1], len(frames), axis=0), audio, rate, fps)
            row.update(offset=played.offset, confidence=played.confidence, late=late.confidence, still=still.confidence)
        rows.append(row)
        cells = [f"{row['lag']:+d}", f"{row['r']:.2f}"] + (
            [f"{row['offset']:+d}", f"{row['confidence']:.3f}", f"{row['late']:.3f}", f"{row['still']:.3f}"]
            if expert is not None else ["–"] * 4)  # fmt: skip
        print(f"| {Path(path).stem} | " + " | ".join(cells) + " |")
    lags = sum(abs(row["lag"]) <= 1 for row in rows)
    print(f"\nphoneme sync: lag within a frame of 0 on {lags} of {len(rows)} clips, mean r {np.mean([row['r'] for row in rows]):.2f}")
    if expert is not None:
        found = sum(abs(row["offset"]) <= 1 for row in rows)
        mean = {key: float(np.mean([row[key] for row in rows])) for key in ("confidence", "late", "still")}
        ratio = f"{mean['confidence'] / mean['late']:.1f}x" if mean["late"] > 0 else "the late audio scores no confidence"
        print(f"expert: offset within a frame on {found} of {len(rows)} clips; confidence {mean['confidence']:.3f} as "
              f"recorded, {mean['late']:.3f} with the audio {args.shift:g} s late ({ratio}), "
              f"{mean['still']:.3f} on the still frame")  # fmt: skip


if __name__ == "__main__":
    main()
