"""A Kedro dataset for a clip that knows what is said in it: the mp4 and a same-stem `.phonemes.csv`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from talking_face.atomic import atomic_path
from talking_face.datasets.video import VideoDataset
from talking_face.media.errors import MediaError

PHONEMES_SUFFIX = ".phonemes.csv"


def phonemes_path(video: str | Path) -> Path:
    """Where the phoneme timing of `video` lies: `<speaker>/<clip>.mp4` -> `<speaker>/<clip>.phonemes.csv`."""
    return Path(video).with_suffix(PHONEMES_SUFFIX)


class TranscribedVideoDataset(VideoDataset):
    """Saves (frames, audio, fps, sample_rate, phones) as the mp4 and a CSV of the phones (phoneme, start_s,
    end_s; any objects with label, start_s and end_s); loads the clip like `VideoDataset`. Ingestion reads
    only the videos, so the CSV travels beside the clip without becoming one."""

    def save(self, data: tuple) -> None:
        if len(data) != 5:
            raise MediaError(self._filepath, f"expected (frames, audio, fps, sample_rate, phones), got {len(data)} items")
        *clip, phones = data
        super().save(tuple(clip))
        table = pd.DataFrame(
            [(phone.label, round(phone.start_s, 4), round(phone.end_s, 4)) for phone in phones],
            columns=["phoneme", "start_s", "end_s"],
        )
        with atomic_path(phonemes_path(self._filepath)) as tmp:
            table.to_csv(tmp, index=False)
