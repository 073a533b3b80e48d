"""Many videos in one go: rows of (image, audio, output) through `generate_video`, bad rows skipped and
reported instead of stopping the batch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping

from tqdm.auto import tqdm

from talking_face.features.eyes import DEFAULT_BLINK_RATE
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.video import SILENCE_DBFS, generate_video

logger = logging.getLogger(__name__)

REQUEST_COLUMNS = ("image", "audio", "output")
REPORT_COLUMNS = ("row", "image", "audio", "output", "status", "reason", "frames", "duration_s")


def _problem_with(request: Mapping, earlier_outputs: dict[Path, int]) -> str | None:
    """Why a request cannot run before trying it (missing field, output already claimed), or None."""
    empty = [column for column in REQUEST_COLUMNS if not str(request.get(column) or "").strip()]
    if empty:
        return f"empty or missing column(s): {', '.join(empty)}"
    output = Path(request["output"]).resolve()
    if output in earlier_outputs:
        return f"output {request['output']} is already written by row {earlier_outputs[output]}"
    return None


def generate_batch(
    model: TalkingFaceModel,
    requests: Iterable[Mapping],
    paste_back: bool = True,
    feather: float = 0.12,
    silence_dbfs: float = SILENCE_DBFS,
    blink_rate: float = DEFAULT_BLINK_RATE,
    mouth_strength: float | None = None,
) -> list[dict]:
    """One report row per request (REPORT_COLUMNS): status "ok" with the frame count, or "skipped" with the
    one-line reason (no face, unreadable or silent audio, ...); a skipped row writes no file."""
    requests = list(requests)
    report, outputs = [], {}
    for row, request in enumerate(tqdm(requests, desc="videos", unit="video")):
        entry = {"row": row, **{column: str(request.get(column) or "") for column in REQUEST_COLUMNS}}
        problem = _problem_with(request, outputs)
        if problem is None:
            try:
                video = generate_video(
                    model, request["image"], request["audio"], request["output"],
                    paste_back=paste_back, progress=False, feather=feather, silence_dbfs=silence_dbfs,
                    blink_rate=blink_rate, mouth_strength=mouth_strength,
                )  # fmt: skip
            except (ValueError, OSError) as error:  # MediaError and file-system errors name the file
                problem = " ".join(str(error).split())
            else:
                outputs[Path(request["output"]).resolve()] = row
                outcome = {"status": "ok", "reason": "", "frames": video.frames, "duration_s": video.duration_s}
                report.append({**entry, **outcome})
                continue
        logger.warning("generate: skipping row %d: %s", row, problem)
        report.append({**entry, "status": "skipped", "reason": problem, "frames": 0, "duration_s": 0.0})
    return report
