"""extract (Ray, incremental) -> validate the summary (Great Expectations) -> stop if nothing passed -> the
accepted clips as compact shards (features.shards) -> PNG panels."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.features.nodes import (
    check_features_outcome,
    extract_features,
    render_feature_panels,
    validate_features,
    write_feature_shards,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                extract_features,
                ["manifest", "feature_index", "params:features"],
                ["feature_clips", "feature_status"],
                name="extract_features",
            ),
            node(
                validate_features,
                ["manifest", "feature_status", "feature_index", "params:features"],
                ["feature_summary", "feature_rejected_clips", "feature_validation_report"],
                name="validate_features",
            ),
            node(
                check_features_outcome,
                ["feature_summary", "feature_rejected_clips"],
                None,
                name="check_features_outcome",
            ),
            node(
                write_feature_shards,
                ["feature_summary", "feature_files", "params:features"],
                "feature_shards",
                name="write_feature_shards",
            ),
            node(
                render_feature_panels,
                ["feature_summary", "feature_clips", "params:features"],
                "feature_panels",
                name="render_feature_panels",
            ),
        ]
    )
