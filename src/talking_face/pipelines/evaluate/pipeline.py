"""test clips -> generation with `animate` -> metrics beside the static baseline -> table, plots, videos."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.evaluate.nodes import evaluate, evaluation_clips, render_examples, summarise_evaluation


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                evaluation_clips,
                ["feature_summary", "feature_files", "params:evaluate"],
                "evaluation_clips",
                name="evaluation_clips",
            ),
            node(
                evaluate,
                ["talking_face_model", "evaluation_clips", "params:evaluate", "sync_expert"],
                ["evaluation_per_clip", "evaluation_examples"],
                name="evaluate_model",
            ),
            node(
                summarise_evaluation,
                ["evaluation_per_clip", "params:evaluate"],
                ["evaluation_metrics", "evaluation_mlflow_metrics", "evaluation_table"],
                name="summarise_evaluation",
            ),
            node(
                render_examples,
                ["evaluation_examples", "params:evaluate"],
                ["evaluation_videos", "evaluation_attention_strips", "evaluation_ear_curves", "evaluation_mouth_strips"],
                name="render_evaluation_examples",
            ),
        ]
    )
