"""Thin node over `talking_face.serving.batch`: requests in, one video per good row and the per-row report out.

The videos themselves go to the paths the requests name (written by `serving.video`, atomically), since
those are the user's choice per row rather than one catalog location.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from talking_face.serving.batch import REPORT_COLUMNS, generate_batch
from talking_face.serving.resolve import default_model, load_model

logger = logging.getLogger(__name__)


def generate_videos(requests: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The model: the one `params["model_uri"]` names when set, else the project's trained bundle
    (`params["model_file"]`) when there is one, else the registry's champion or the pretrained model that
    ships with the package (`serving.resolve.default_model`); one log line says which."""
    uri, trained = params.get("model_uri"), Path(params["model_file"])
    if uri:
        model, which = load_model(uri), str(uri)
    elif trained.is_file():
        model, which = load_model(trained), str(trained)
    else:
        model, which = default_model()
    logger.info("model: %s", which)
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
