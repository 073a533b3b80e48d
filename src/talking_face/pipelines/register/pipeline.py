"""model bundle + evaluation metrics -> MLflow pyfunc model version -> challenger, champion if it earns it."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.register.nodes import register_model, training_data_version


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(training_data_version, ["manifest", "training_feature_paths"], "data_version", name="data_version"),
            node(
                register_model,
                [
                    "talking_face_model",
                    "evaluation_metrics",
                    "evaluation_clips",
                    "data_version",
                    "params:register",
                    "params:evaluate",
                ],
                "promotion_decision",
                name="register_model",
            ),
        ]
    )
