"""model bundle + evaluation metrics -> MLflow pyfunc model version with its model card -> challenger,
champion if it earns it."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.register.nodes import register_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                register_model,
                [
                    "talking_face_model",
                    "evaluation_metrics",
                    "evaluation_clips",
                    "data_version",  # read-only catalog entry: what the training runs are tagged with
                    "manifest",
                    "evaluation_table",
                    "params:register",
                    "params:evaluate",
                    "sync_expert",
                ],
                ["promotion_decision", "model_card"],
                name="register_model",
            ),
        ]
    )
