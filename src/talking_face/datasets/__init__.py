"""Custom Kedro datasets: catalog types for data the standard kedro-datasets types do not cover."""

from talking_face.datasets.transcribed import TranscribedVideoDataset
from talking_face.datasets.video import VideoClip, VideoDataset

__all__ = ["TranscribedVideoDataset", "VideoClip", "VideoDataset"]
