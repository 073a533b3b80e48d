"""talking-face: MAN (Multi-Modal Adaptive Normalization) audio-to-video generation as an MLOps pipeline."""

__version__ = "0.1.0"
