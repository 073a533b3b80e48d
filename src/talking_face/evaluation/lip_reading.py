"""Word error rate of a lip-reading model on generated video: only when such a model is configured.

No lip-reading model ships with the project, so the usual answer is "not configured" with the reason,
which the metrics table shows in the WER column instead of a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class WerResult:
    value: float | None  # word error rate (0 = every word right; can exceed 1), None when not measured
    reason: str  # why there is no value, or the model that produced it


NOT_CONFIGURED = WerResult(value=None, reason="not configured: no lip-reading model path given")


def lip_reading_wer(frames: np.ndarray, transcript: str, model_path: str | Path | None = None) -> WerResult:
    """WER of the words a lip-reading model reads from `frames` against `transcript`.

    Without `model_path` (None or "") the result is `NOT_CONFIGURED`. A path that is given must exist, and
    since no lip-reading backend is supported yet, a given path raises a one-line ValueError naming it
    rather than silently skipping a metric someone asked for.
    """
    if model_path is None or str(model_path) == "":
        return NOT_CONFIGURED
    path = Path(model_path)
    if not path.exists():
        raise ValueError(f"{path}: lip-reading model not found")
    raise ValueError(
        f"{path}: loading a lip-reading model is not supported (no backend ships); "
        "leave the lip-reading model path empty to skip WER"
    )
