"""generate_requests (CSV) + the model (parameters: the trained bundle, a model URI, else the champion or the
shipped model) -> one mp4 per good row, and a report of every row."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.generate.nodes import generate_videos


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                generate_videos,
                ["generate_requests", "params:generate"],
                "generate_report",
                name="generate_videos",
            ),
        ]
    )
