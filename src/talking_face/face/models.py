"""Loads dlib's detector, 68-point shape predictor and face-recognition network once per process.

The model files ship inside the `face-recognition-models` package; its folder is found with
`importlib.util.find_spec` because importing the package itself needs `pkg_resources`.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import dlib


def model_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face-recognition-models is not installed: pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@lru_cache(maxsize=1)
def detector():
    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def shape_predictor():
    return dlib.shape_predictor(str(model_dir() / "shape_predictor_68_face_landmarks.dat"))


@lru_cache(maxsize=1)
def face_encoder():
    return dlib.face_recognition_model_v1(str(model_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
