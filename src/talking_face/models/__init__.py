"""MAN networks and losses (torch only: no files beyond the optional VGG19 weights, no Kedro, no MLflow).

config.py: presets and ablation variants; man.py: MAN block and MAN ResNet block; cam.py: CAM layer;
generator.py, discriminator.py, predictors.py: the networks; losses.py: the training objectives.
"""

from talking_face.models.config import (
    VARIANTS,
    DiscriminatorConfig,
    GeneratorConfig,
    MANConfig,
    ModelConfig,
    PredictorConfig,
    model_config,
)
from talking_face.models.discriminator import MultiScaleDiscriminator, ScaleOutput
from talking_face.models.generator import GeneratorOutput, MANGenerator
from talking_face.models.man import MANBlock, MANResBlock, rho_table, set_active_sources
from talking_face.models.predictors import FlowPredictor, KeypointPredictor, warp

__all__ = [
    "VARIANTS",
    "DiscriminatorConfig",
    "FlowPredictor",
    "GeneratorConfig",
    "GeneratorOutput",
    "KeypointPredictor",
    "MANBlock",
    "MANConfig",
    "MANGenerator",
    "MANResBlock",
    "ModelConfig",
    "MultiScaleDiscriminator",
    "PredictorConfig",
    "ScaleOutput",
    "model_config",
    "rho_table",
    "set_active_sources",
    "warp",
]
