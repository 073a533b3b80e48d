"""One person under two speaker names (GRID's `s1` in one folder, `grid_a` in another): found by dlib
face embeddings so that the split keeps that person on one side.

Each speaker is embedded from a few frames of its first clip (by clip_id); two speakers of different
corpora whose mean embeddings lie closer than `threshold` are one person, and so is every chain of such
pairs; the person is named after the first of its speakers in sorted order. Speakers of one corpus keep the
corpus's own labels (the built-in sample's speakers are variants of one photo, and would all match).
Measured on ../shared/data: the same people across folders at 0.13 and 0.18, different people at 0.56 and
above, so the default threshold (0.45) sits in the gap, below dlib's single-image 0.6.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from talking_face.face.detect import detect_faces, face_embedding
from talking_face.media.errors import MediaError
from talking_face.media.video import read_frames

logger = logging.getLogger(__name__)

EMBEDDED_FRAMES = 3  # frames per speaker, spread over its first clip


def speaker_embeddings(clips: pd.DataFrame, n_frames: int = EMBEDDED_FRAMES) -> dict[str, np.ndarray]:
    """{speaker: mean 128-d embedding} from the first clip of each speaker; speakers without a face are left out."""
    embeddings = {}
    for speaker, rows in clips.sort_values("clip_id").groupby("speaker", sort=True):
        path = rows["path"].iloc[0]
        try:
            frames, _ = read_frames(path)
        except MediaError as error:
            logger.warning("same-person check: %s skipped (%s)", speaker, error)
            continue
        vectors = []
        for index in np.linspace(0, len(frames) - 1, n_frames + 2).round().astype(int)[1:-1]:
            boxes = detect_faces(frames[index])
            if len(boxes):
                vectors.append(face_embedding(frames[index], boxes[0]))
        if vectors:
            embeddings[speaker] = np.mean(vectors, axis=0)
        else:
            logger.warning("same-person check: no face found in %s, speaker %s is left as it is", path, speaker)
    return embeddings


def group_people(
    embeddings: dict[str, np.ndarray], threshold: float, corpus_of: dict[str, str] | None = None
) -> tuple[dict[str, str], list[dict]]:
    """({speaker: person}, the matched pairs with their distance) for speakers closer than `threshold`;
    with `corpus_of`, only speakers of different corpora are compared."""
    corpus_of = corpus_of or {}
    speakers = sorted(embeddings)
    parent = {speaker: speaker for speaker in speakers}

    def root(speaker: str) -> str:
        while parent[speaker] != speaker:
            speaker = parent[speaker]
        return speaker

    matches = []
    for i, first in enumerate(speakers):
        for second in speakers[i + 1:]:
            if corpus_of.get(first) is not None and corpus_of.get(first) == corpus_of.get(second):
                continue
            distance = float(np.linalg.norm(embeddings[first] - embeddings[second]))
            if distance < threshold:
                matches.append({"speakers": [first, second], "distance": round(distance, 4)})
                low, high = sorted((root(first), root(second)))
                parent[high] = low
    return {speaker: root(speaker) for speaker in speakers}, matches


def assign_people(clips: pd.DataFrame, threshold: float | None) -> tuple[pd.DataFrame, list[dict]]:
    """`clips` with a `person` column, and the matched speaker pairs (warned about); threshold None: person = speaker."""
    if threshold is None:
        return clips.assign(person=clips["speaker"]), []
    corpus_of = dict(zip(clips["speaker"], clips["corpus"])) if "corpus" in clips else None
    if corpus_of is not None and len(set(corpus_of.values())) < 2:
        return clips.assign(person=clips["speaker"]), []  # one corpus: nothing to compare
    people, matches = group_people(speaker_embeddings(clips), float(threshold), corpus_of)
    for match in matches:
        first, second = match["speakers"]
        logger.warning("speakers %s and %s look like the same person (face distance %.3f < %g): one person for "
                       "the split", first, second, match["distance"], threshold)
    return clips.assign(person=clips["speaker"].map(people).fillna(clips["speaker"])), matches
