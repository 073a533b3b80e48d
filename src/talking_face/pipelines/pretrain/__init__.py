"""`pretrain`: both motion predictors (keypoint hourglass, flow UNet) on the features' ground truth."""

from talking_face.pipelines.pretrain.pipeline import create_pipeline

__all__ = ["create_pipeline"]
