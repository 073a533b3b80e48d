"""The Great Expectations suite for the feature summary table (one row per extracted clip)."""

from __future__ import annotations

import pandas as pd

from talking_face.validation.expectations import validate_table


def feature_expectations(thresholds: dict, crop_size: int) -> list[dict]:
    """Suite specs (see validation.expectations) from the `features.validation` parameters.

    Flow bounds are fractions of the crop size, so one setting serves every crop size.
    """
    max_flow = thresholds["max_flow_fraction"] * crop_size
    return [
        _between("n_frames", thresholds["min_frames"], None, "only {value} frames, under the minimum {min_value}"),
        {"expectation": "ExpectColumnValuesToBeInSet", "kwargs": {"column": "shapes_ok", "value_set": [True]},
         "reason": "arrays break the feature schema"},
        _between("nan_count", 0, 0, "{value} NaN values in the features"),
        _between("inf_count", 0, 0, "{value} infinite values in the features"),
        _between("voiced_fraction", thresholds["min_voiced_fraction"], thresholds["max_voiced_fraction"],
                 "voiced fraction {value:.2f} outside [{min_value}, {max_value}] (no speech, or pitch tracking failed)"),
        _between("flow_max", 0, max_flow,
                 "optical flow reaches {value:.1f} px per frame, over {max_value:.1f} (a cut or a lost track?)"),
        _between("landmark_spread", thresholds["min_landmark_spread"], thresholds["max_landmark_spread"],
                 "landmark spread {value:.3f} of the crop outside [{min_value}, {max_value}] (face too small, "
                 "too large or landmarks collapsed)"),
        _between("landmarks_inside", thresholds["min_landmarks_inside"], None,
                 "only {value:.0%} of the landmarks fall inside the crop"),
    ]


def validate_feature_summary(
    summary: pd.DataFrame, thresholds: dict, crop_size: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(accepted rows, rejected rows with a `reason` column, report), as validation.validate_table."""
    return validate_table(summary, feature_expectations(thresholds, crop_size), "clip_id", "feature_summary")


def _between(column: str, low, high, reason: str) -> dict:
    return {
        "expectation": "ExpectColumnValuesToBeBetween",
        "kwargs": {"column": column, "min_value": low, "max_value": high},
        "reason": reason,
    }
