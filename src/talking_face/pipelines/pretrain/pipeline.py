"""accepted train-split feature files -> Ray Train pretraining of both predictors -> their weights; the same\nfiles -> the lip-sync expert that evaluation judges talking with, and the mouth layer's opening network."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.pretrain.nodes import (
    mouth_opening,
    pretrain,
    sync_expert,
    training_data,
    training_feature_paths,
)


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
                training_data,
                ["training_feature_paths", "feature_shards", "params:training_data", "params:features"],
                "training_data",
                name="training_data",
            ),
            node(
                pretrain,
                ["training_data", "params:pretrain", "params:model", "params:ray", "params:features", "params:seed"],
                ["pretrained_predictors", "pretrain_history"],
                name="pretrain_predictors",
            ),
            node(
                sync_expert,
                ["training_feature_paths", "params:sync_expert", "params:ray", "params:seed"],
                ["sync_expert", "sync_expert_history", "sync_expert_curves"],
                name="train_sync_expert",
            ),
            node(
                mouth_opening,
                ["feature_summary", "feature_files", "params:mouth_opening", "params:model", "params:seed"],
                ["mouth_opening", "mouth_opening_report"],
                name="train_mouth_opening",
            ),
        ]
    )
