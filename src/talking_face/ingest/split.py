"""Person-level train/test split: unseen people for the paper's test, and held-out clips of seen ones.

The unit is the person (`person` column, see ingest.people; the speaker when absent): one person under two
speaker names stays on one side. The unseen test set is either declared (`test_speakers`, `test_corpora`)
or drawn at random (`test_unseen_speaker_fraction`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from talking_face.ingest.records import IngestError

logger = logging.getLogger(__name__)

TRAIN, TEST_SEEN, TEST_UNSEEN = "train", "test_seen", "test_unseen"


def assign_splits(
    clips: pd.DataFrame,
    test_unseen_speaker_fraction: float,
    test_seen_clip_fraction: float,
    seed: int,
    test_speakers: list[str] | None = None,
    test_corpora: list[str] | None = None,
) -> pd.DataFrame:
    """A copy of `clips` (columns clip_id, speaker; optionally person, corpus) with a `split` column;
    deterministic for a seed.

    test_unseen: with `test_speakers` or `test_corpora`, their people; a person named in `test_speakers`
    goes to the test whole, while a person of a test corpus who also speaks in a training corpus stays a
    training person and its test-corpus clips become test_seen (they are not unseen). Otherwise
    round(fraction x people) whole people, at least one when there are two or more.
    test_seen: round(fraction x training clips) clips (at least one when possible) of training people who
    keep at least one training clip, spread over as many people as possible.
    """
    clips = clips.sort_values("clip_id", kind="stable").reset_index(drop=True)
    if "person" not in clips:
        clips = clips.assign(person=clips["speaker"])
    rng = np.random.default_rng(seed)
    clips_per_person = clips.groupby("person")["clip_id"].apply(list)
    people = list(rng.permutation(clips_per_person.index.to_numpy()))

    if test_speakers or test_corpora:
        unseen, seen_test = _declared_unseen(clips, test_speakers or [], test_corpora or [])
    else:
        unseen, seen_test = _random_unseen(people, clips_per_person, test_unseen_speaker_fraction), set()

    # Each training person's clips in random order; the first stays in training. Held-out clips are taken
    # round-robin over people so the seen-speaker test covers as many of them as it can.
    shuffled = [[clip for clip in rng.permutation(clips_per_person[person]) if clip not in seen_test][1:]
                for person in people if person not in unseen]
    holdable = [clip_id for rank in range(max(map(len, shuffled), default=0)) for kept in shuffled
                for clip_id in kept[rank : rank + 1]]
    n_train_clips = int((~clips["person"].isin(unseen)).sum()) - len(seen_test)
    n_seen = int(round(test_seen_clip_fraction * n_train_clips))
    if test_seen_clip_fraction > 0 and holdable:
        n_seen = min(max(n_seen, 1), len(holdable))
    seen_test |= set(holdable[:n_seen])

    split = np.where(clips["person"].isin(unseen), TEST_UNSEEN, TRAIN)
    split = np.where(clips["clip_id"].isin(seen_test), TEST_SEEN, split)
    return clips.assign(split=split)


def _random_unseen(people: list, clips_per_person: pd.Series, fraction: float) -> set:
    n_unseen = int(round(fraction * len(people)))
    if fraction > 0 and len(people) >= 2:
        n_unseen = min(max(n_unseen, 1), len(people) - 1)
    ordered = list(people)
    reserved = next((person for person in ordered if len(clips_per_person[person]) > 1), None)
    if reserved is not None and n_unseen < len(ordered):
        ordered.remove(reserved)
        ordered.append(reserved)  # picked last for the unseen set, so a seen-speaker test stays possible
    return set(ordered[:n_unseen])


def _declared_unseen(clips: pd.DataFrame, test_speakers: list[str], test_corpora: list[str]) -> tuple[set, set]:
    """(unseen people, clip ids moved to test_seen) from the declared test speakers and corpora."""
    unknown = sorted(set(test_speakers) - set(clips["speaker"]))
    if unknown:
        raise IngestError(f"ingest.test_speakers names speakers that no clip has: {', '.join(unknown)}")
    if test_corpora and "corpus" in clips:
        missing = sorted(set(test_corpora) - set(clips["corpus"]))
        if missing:
            raise IngestError(f"ingest.test_corpora names corpora that no clip has: {', '.join(missing)}")
        in_test_corpus = clips["corpus"].isin(test_corpora)
    else:
        in_test_corpus = pd.Series(False, index=clips.index)
    named = set(clips.loc[clips["speaker"].isin(test_speakers), "person"])
    declared = clips["speaker"].isin(test_speakers) | in_test_corpus
    also_trained = set(clips.loc[~declared, "person"]) - named
    unseen = set(clips.loc[declared, "person"]) - also_trained
    seen_test = set(clips.loc[declared & clips["person"].isin(also_trained), "clip_id"])
    for person in sorted(set(clips.loc[declared, "person"]) & also_trained):
        speakers = sorted(set(clips.loc[clips["person"] == person, "speaker"]))
        logger.warning("person %s (%s) speaks in training corpora too: its test-corpus clips are test_seen, "
                       "not unseen", person, ", ".join(speakers))
    if not unseen:
        raise IngestError("the declared test speakers/corpora leave no unseen person (every one also trains)")
    return unseen, seen_test
