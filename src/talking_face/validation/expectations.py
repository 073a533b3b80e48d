"""Great Expectations 1.x validation of tables, in an ephemeral in-memory context (no files, no network).

A suite is a list of plain dicts, built from parameters so other steps can define their own:
    {"expectation": "ExpectColumnValuesToBeBetween",        # a class in great_expectations.expectations
     "kwargs": {"column": "fps", "min_value": 15, "max_value": 60},
     "reason": "frame rate {value:g} fps outside [{min_value}, {max_value}]"}
An optional "where": [column, operator, value] (operator one of < <= > >= == !=) limits the expectation to
the rows that meet it. `reason` is formatted per failing row with `value` (the row's value in `column`) and
the kwargs. Rows that fail any column expectation are rejected with all their reasons; table-level
expectations (no `column`) only mark the report as failed.
"""

from __future__ import annotations

import operator
import os

import pandas as pd

# Set before great_expectations is first imported, so its analytics never start.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
              "!=": operator.ne}


def validate_table(
    table: pd.DataFrame, expectations: list[dict], id_column: str, suite_name: str = "table"
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Validates `table` row-wise; returns (accepted rows, rejected rows plus a `reason` column, report)."""
    import great_expectations as gx  # imported lazily: it takes seconds
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    frame = table.reset_index(drop=True)
    context = _ephemeral_context()  # suites need an active context
    suite = gx.ExpectationSuite(name=suite_name)
    for number, spec in enumerate(expectations):
        where = {}
        if "where" in spec:
            column, symbol, value = spec["where"]
            where["row_condition"] = _OPERATORS[symbol](Column(column), value)
        suite.add_expectation(getattr(gxe, spec["expectation"])(**spec["kwargs"], **where, meta={"spec": number}))
    batch = (
        context.data_sources.add_pandas(suite_name)
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole_table")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})

    reasons: dict[int, list[str]] = {}
    outcomes = []
    for item in sorted(result.results, key=lambda item: item.expectation_config.meta["spec"]):
        spec = expectations[item.expectation_config.meta["spec"]]
        if item.exception_info.get("raised_exception"):
            raise ValueError(f"suite {suite_name}: {spec['expectation']} failed to run: "
                             f"{item.exception_info.get('exception_message')}")
        failing = [int(index) for index in item.result.get("unexpected_index_list") or []]
        column = spec["kwargs"].get("column")
        for index in failing:
            value = frame.at[index, column] if column else None
            reasons.setdefault(index, []).append(spec["reason"].format(value=value, **spec["kwargs"]))
        outcomes.append({
            "expectation": spec["expectation"],
            "kwargs": _plain(spec["kwargs"]),
            **({"where": _plain(spec["where"])} if "where" in spec else {}),
            "success": bool(item.success),
            "unexpected_count": len(failing),
            "unexpected_ids": [str(frame.at[index, id_column]) for index in failing],
        })

    rejected_mask = frame.index.isin(list(reasons))
    rejected = frame[rejected_mask].assign(reason=["; ".join(reasons[index]) for index in frame.index[rejected_mask]])
    accepted = frame[~rejected_mask].reset_index(drop=True)
    report = {
        "suite": suite_name,
        "success": bool(result.success),
        "rows": len(frame),
        "accepted": len(accepted),
        "rejected": int(rejected_mask.sum()),
        "statistics": _plain(result.statistics),
        "expectations": outcomes,
    }
    return accepted, rejected.reset_index(drop=True), report


def manifest_expectations(params: dict) -> list[dict]:
    """The manifest suite from the `ingest` parameters: fps, durations, A/V mismatch, frame size, audio
    present, unique ids, streams that decode."""
    fps_min, fps_max = params["fps_range"]
    side_min, side_max = params["frame_size_range"]
    min_s, max_diff = params["min_duration_s"], params["max_av_diff_s"]
    with_audio = {"where": ["audio_rate", ">", 0]}
    return [
        _between("fps", fps_min, fps_max, "frame rate {value:.3g} fps outside [{min_value}, {max_value}]"),
        _between("duration_s", min_s, None, "video lasts {value:.2f} s, under the minimum {min_value} s"),
        _between("audio_duration_s", min_s, None, "audio lasts {value:.2f} s, under the minimum {min_value} s",
                 **with_audio),
        _between("av_diff_s", -max_diff, max_diff,
                 "audio and video durations differ by {value:+.2f} s, more than {max_value} s", **with_audio),
        _between("width", side_min, side_max, "frame width {value} px outside [{min_value}, {max_value}]"),
        _between("height", side_min, side_max, "frame height {value} px outside [{min_value}, {max_value}]"),
        _between("audio_rate", 1, None, "no audio: no audio track and no same-name .wav sidecar"),
        {"expectation": "ExpectColumnValuesToBeUnique", "kwargs": {"column": "clip_id"},
         "reason": "clip_id {value} is not unique (several files give the same id)"},
        {"expectation": "ExpectColumnValuesToBeInSet", "kwargs": {"column": "video_readable", "value_set": [True]},
         "reason": "video stream does not decode"},
        {"expectation": "ExpectColumnValuesToBeInSet", "kwargs": {"column": "audio_readable", "value_set": [True]},
         "reason": "audio stream does not decode", **with_audio},
    ]


def validate_manifest(probed: pd.DataFrame, params: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Runs the manifest suite over probed clips; see validate_table for what comes back."""
    return validate_table(probed, manifest_expectations(params), id_column="clip_id", suite_name="manifest")


def _between(column: str, low, high, reason: str, **where) -> dict:
    kwargs = {"column": column, "min_value": low, "max_value": high}
    return {"expectation": "ExpectColumnValuesToBeBetween", "kwargs": kwargs, "reason": reason, **where}


def _ephemeral_context():
    """An in-memory context with analytics and progress bars off: nothing is written, nothing is sent."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _plain(value):
    """JSON-ready copy: numpy scalars to Python numbers, tuples to lists."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value.item() if hasattr(value, "item") else value
