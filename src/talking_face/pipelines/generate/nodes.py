"""Thin node over `talking_face.serving.batch`: requests and a model in, the per-row report out.

The videos themselves go to the paths the requests name (written by `serving.video`, atomically), since
those are the user's choice per row rather than one catalog location.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from talking_face.serving.batch import REPORT_COLUMNS, generate_batch
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.resolve import load_model


def generate_videos(requests: pd.DataFrame, talking_face_model: dict, params: dict[str, Any]) -> pd.DataFrame:
    """Uses the catalog's model bundle, or the model `params["model_uri"]` names when set."""
    uri = params.get("model_uri")
    model = load_model(uri) if uri else TalkingFaceModel.from_state(talking_face_model)
    report = generate_batch(
        model,
        requests.to_dict("records"),
        paste_back=bool(params["paste_back"]),
        feather=float(params["feather"]),
        silence_dbfs=float(params["silence_dbfs"]),
        blink_rate=float(params["blink_rate"]),
        mouth_strength=params.get("mouth_strength"),
    )
    return pd.DataFrame(report, columns=list(REPORT_COLUMNS))
