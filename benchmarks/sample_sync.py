"""Does the sample corpus talk the way real video does? Per sample clip as written (H.264 + AAC): the phoneme
sync of its mouth as evaluation measures it on real video, and how well pocketsphinx hears the phonemes
espeak-ng said (the clip's `.phonemes.csv`).

    .venv/bin/python benchmarks/sample_sync.py [--clips 'data/01_raw/sample/*/*.mp4']

Phoneme sync: `speech_openness` of the decoded audio against dlib's inner-lip gap at the best lag within
+-5 frames, the figure `benchmarks/sync_check.py` gives real GRID. Recogniser: the correlation of the
openness pocketsphinx hears with the openness of the phonemes espeak-ng said, frame by frame.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np
import pandas as pd

from talking_face.datasets import VideoDataset
from talking_face.datasets.transcribed import phonemes_path
from talking_face.evaluation import sync
from talking_face.face.detect import detect_faces, landmarks
from talking_face.features.phonemes import Phone, openness_track, speech_openness


def lip_points(frames: np.ndarray) -> np.ndarray:
    """dlib's 68 points per frame; a frame without a face repeats the previous one's."""
    points, previous = [], None
    for frame in frames:
        boxes = detect_faces(frame)
        previous = landmarks(frame, boxes[0]) if len(boxes) else previous
        points.append(previous)
    first = next(p for p in points if p is not None)
    return np.stack([first if p is None else p for p in points])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default="data/01_raw/sample/*/*.mp4", help="glob of sample videos")
    args = parser.parse_args()
    paths = sorted(glob.glob(args.clips))
    if not paths:
        raise SystemExit(f"{args.clips}: no videos match")
    print("| clip | phoneme lag | phoneme r | recogniser r (heard vs said) |\n|---|---:|---:|---:|")
    rows = []
    for path in paths:
        clip = VideoDataset(filepath=path).load()
        n_frames = len(clip.frames)
        heard = speech_openness(clip.audio, n_frames, clip.sample_rate, clip.fps)
        phoneme = sync.av_sync(sync.mouth_opening(lip_points(clip.frames)), heard)
        said = pd.read_csv(phonemes_path(path))
        truth = openness_track([Phone(*row) for row in said.itertuples(index=False)], n_frames, clip.fps)
        rows.append((phoneme.lag, phoneme.correlation, np.corrcoef(truth, heard)[0, 1]))
        name = Path(path).relative_to(Path(path).parents[1]).with_suffix("")
        print(f"| {name} | {phoneme.lag:+d} | {phoneme.correlation:.2f} | {rows[-1][2]:.2f} |")
    lags, rs, heard_rs = map(np.array, zip(*rows))
    print(f"\nphoneme sync: lag within a frame of 0 on {(np.abs(lags) <= 1).sum()} of {len(rows)} clips, "
          f"r {rs.min():.2f}-{rs.max():.2f}, mean {rs.mean():.2f}; recogniser r {heard_rs.min():.2f}-"
          f"{heard_rs.max():.2f}, mean {heard_rs.mean():.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
