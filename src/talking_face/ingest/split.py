"""Speaker-level train/test split: unseen speakers for the paper's test, and held-out clips of seen ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRAIN, TEST_SEEN, TEST_UNSEEN = "train", "test_seen", "test_unseen"


def assign_splits(
    clips: pd.DataFrame, test_unseen_speaker_fraction: float, test_seen_clip_fraction: float, seed: int
) -> pd.DataFrame:
    """A copy of `clips` (columns clip_id, speaker) with a `split` column; deterministic for a seed.

    test_unseen: round(fraction x speakers) whole speakers, at least one when there are two or more.
    test_seen: round(fraction x training clips) clips (at least one when possible) of training speakers who
    keep at least one training clip, spread over as many speakers as possible. A speaker with several clips
    stays in training when one exists, so a seen-speaker test is possible.
    """
    clips = clips.sort_values("clip_id", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    clips_per_speaker = clips.groupby("speaker")["clip_id"].apply(list)
    speakers = list(rng.permutation(clips_per_speaker.index.to_numpy()))

    n_unseen = int(round(test_unseen_speaker_fraction * len(speakers)))
    if test_unseen_speaker_fraction > 0 and len(speakers) >= 2:
        n_unseen = min(max(n_unseen, 1), len(speakers) - 1)
    reserved = next((speaker for speaker in speakers if len(clips_per_speaker[speaker]) > 1), None)
    if reserved is not None and n_unseen < len(speakers):
        speakers.remove(reserved)
        speakers.append(reserved)  # picked last for the unseen set, so it stays in training
    unseen = set(speakers[:n_unseen])

    # Each training speaker's clips in random order; the first stays in training. Held-out clips are taken
    # round-robin over speakers so the seen-speaker test covers as many of them as it can.
    shuffled = [list(rng.permutation(clips_per_speaker[speaker]))[1:] for speaker in speakers if speaker not in unseen]
    holdable = [clip_id for rank in range(max(map(len, shuffled), default=0)) for kept in shuffled
                for clip_id in kept[rank : rank + 1]]
    n_train_clips = int((~clips["speaker"].isin(unseen)).sum())
    n_seen = int(round(test_seen_clip_fraction * n_train_clips))
    if test_seen_clip_fraction > 0 and holdable:
        n_seen = min(max(n_seen, 1), len(holdable))
    seen_test = set(holdable[:n_seen])

    split = np.where(clips["speaker"].isin(unseen), TEST_UNSEEN, TRAIN)
    split = np.where(clips["clip_id"].isin(seen_test), TEST_SEEN, split)
    return clips.assign(split=split)
