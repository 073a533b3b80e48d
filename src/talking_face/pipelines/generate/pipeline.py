"""generate_requests (CSV) + the model -> one mp4 per good row, and a report of every row."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.generate.nodes import generate_videos


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                generate_videos,
                ["generate_requests", "talking_face_model", "params:generate"],
                "generate_report",
                name="generate_videos",
            ),
        ]
    )
