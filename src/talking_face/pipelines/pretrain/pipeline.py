"""accepted train-split feature files -> Ray Train pretraining of both predictors -> their weights."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.pretrain.nodes import pretrain, training_feature_paths


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                training_feature_paths,
                ["feature_summary", "feature_files"],
                "training_feature_paths",
                name="training_feature_paths",
            ),
            node(
                pretrain,
                ["training_feature_paths", "params:pretrain", "params:model", "params:ray", "params:features", "params:seed"],
                ["pretrained_predictors", "pretrain_history"],
                name="pretrain_predictors",
            ),
        ]
    )
