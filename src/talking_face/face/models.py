"""Loads dlib's detector, 68-point shape predictor and face-recognition network: the shape predictor once per
process, the detector and the network once per thread, because dlib's object detectors and networks keep
scratch state while they run and give wrong answers when two threads use one at once (the live server
finds the faces of several sessions in parallel worker threads).

The model files ship inside the `face-recognition-models` package; its folder is found with
`importlib.util.find_spec` because importing the package itself needs `pkg_resources`.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache, wraps
from pathlib import Path

import dlib


def model_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face-recognition-models is not installed: pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def per_thread(load):
    """`load()`'s result, made once in each thread that asks for it."""
    made = threading.local()

    @wraps(load)
    def get():
        if not hasattr(made, "value"):
            made.value = load()
        return made.value

    return get


@per_thread
def detector():
    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def shape_predictor():
    return dlib.shape_predictor(str(model_dir() / "shape_predictor_68_face_landmarks.dat"))


@per_thread
def face_encoder():
    return dlib.face_recognition_model_v1(str(model_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
