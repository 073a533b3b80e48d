"""discover + probe -> validate (Great Expectations) -> check the outcome -> split by speaker."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.ingest.nodes import check_ingest_outcome, discover_and_probe, split_clips, validate_clips


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                discover_and_probe,
                "params:ingest",
                ["probed_clips", "unprobed_rejections"],
                name="discover_and_probe",
            ),
            node(
                validate_clips,
                ["probed_clips", "unprobed_rejections", "params:ingest"],
                ["validated_clips", "rejected_clips", "ingest_validation_report"],
                name="validate_clips",
            ),
            node(
                check_ingest_outcome,
                ["validated_clips", "rejected_clips", "ingest_validation_report", "params:ingest"],
                "accepted_clips",
                name="check_ingest_outcome",
            ),
            node(split_clips, ["accepted_clips", "params:ingest"], ["manifest", "split_report"], name="split_clips"),
        ]
    )
