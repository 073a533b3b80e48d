"""The end-to-end chain: ingest -> features -> pretrain -> train the MAN GAN -> calibrate its mouth strength
-> evaluate -> register."""

from kedro.pipeline import Pipeline, node

from talking_face.pipelines.evaluate.pipeline import create_pipeline as evaluate
from talking_face.pipelines.features.pipeline import create_pipeline as features
from talking_face.pipelines.ingest.pipeline import create_pipeline as ingest
from talking_face.pipelines.pretrain.pipeline import create_pipeline as pretrain
from talking_face.pipelines.register.pipeline import create_pipeline as register
from talking_face.pipelines.train.nodes import calibrate_model, train_man_gan


def gan_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(
                train_man_gan,
                [
                    "training_data",
                    "pretrained_predictors",
                    "params:train",
                    "params:model",
                    "params:ray",
                    "params:features",
                    "params:seed",
                    "sync_expert",
                ],
                ["gan_model", "train_history"],
                name="train_man_gan",
            ),
            node(
                calibrate_model,
                ["gan_model", "feature_summary", "feature_files", "params:calibration", "params:evaluate", "params:register",
                 "sync_expert", "mouth_opening", "params:layers"],
                ["talking_face_model", "mouth_strength_calibration", "mouth_strength_figure", "mouth_strength"],
                name="calibrate_mouth_strength",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    return ingest() + features() + pretrain() + gan_pipeline() + evaluate() + register()
