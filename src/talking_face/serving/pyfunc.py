"""The model as an MLflow pyfunc: a DataFrame of base64 photos and speech in, base64 mp4s out.

    info = log_pyfunc_model("data/06_models/talking_face_model.pt", registered_model_name="talking-face-man")
    mlflow models serve -m models:/talking-face-man@champion --env-manager local
    curl -d '{"dataframe_split": {"columns": ["image", "audio"], "data": [["<b64 jpg>", "<b64 wav>"]]}}' \
         -H 'Content-Type: application/json' http://127.0.0.1:5000/invocations

Each row goes through `serving.video.generate_video`, the same path as the CLI (face found and cropped like
the training data, pasted back into the photo). The bundle file is the model's one artifact; the
`talking_face` package travels as code, with pinned requirements for serving in another environment.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, Schema

import talking_face
from talking_face.conditioning.bundle import TalkingFaceModel

BUNDLE_ARTIFACT = "bundle"
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "image"), ColSpec("string", "audio")]),
    outputs=Schema([ColSpec("string", "video")]),
)
# What the serving path imports (distribution names), pinned to the versions of this environment.
SERVING_DISTRIBUTIONS = (
    "mlflow", "torch", "numpy", "pandas", "scipy", "av", "opencv-python-headless", "dlib-bin",
    "face-recognition-models", "librosa", "pyworld", "tqdm",
)  # fmt: skip


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in SERVING_DISTRIBUTIONS]


def _decode(value, column: str, row: int) -> bytes:
    try:
        data = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise MlflowException(f"row {row}: {column!r} is not valid base64", INVALID_PARAMETER_VALUE) from None
    if not data:
        raise MlflowException(f"row {row}: {column!r} is empty", INVALID_PARAMETER_VALUE)
    return data


class TalkingFacePyfunc(mlflow.pyfunc.PythonModel):
    """predict(DataFrame[image, audio] of base64 file bytes) -> DataFrame[video] of base64 mp4 bytes."""

    def __init__(self, model: TalkingFaceModel | None = None):
        self.model = model

    def load_context(self, context) -> None:
        self.model = TalkingFaceModel.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from talking_face.serving.video import generate_video

        missing = {"image", "audio"} - set(model_input.columns)
        if missing:
            raise MlflowException(f"input lacks the column(s) {sorted(missing)}", INVALID_PARAMETER_VALUE)
        videos = []
        with tempfile.TemporaryDirectory(prefix="talking-face-") as scratch:
            for row, (image, audio) in enumerate(zip(model_input["image"], model_input["audio"])):
                image_path, audio_path = Path(scratch, f"image-{row}"), Path(scratch, f"audio-{row}")
                image_path.write_bytes(_decode(image, "image", row))
                audio_path.write_bytes(_decode(audio, "audio", row))
                out = Path(scratch, f"video-{row}.mp4")
                try:
                    generate_video(self.model, image_path, audio_path, out, progress=False)
                except ValueError as error:  # MediaError: no face, unreadable, silent ...
                    raise MlflowException(f"row {row}: {error}", INVALID_PARAMETER_VALUE) from None
                videos.append(base64.b64encode(out.read_bytes()).decode("ascii"))
                out.unlink()
        return pd.DataFrame({"video": videos})


def log_pyfunc_model(
    bundle_path: str, artifact_path: str = "model", registered_model_name: str | None = None
) -> ModelInfo:
    """Logs the bundle at `bundle_path` as a pyfunc model (into the active run, if any); registers it when
    `registered_model_name` is given. Returns MLflow's ModelInfo (model_uri, registered_model_version, ...).
    The package goes with it as code, without the pretrained model it ships (the version has its own bundle)."""
    with tempfile.TemporaryDirectory(prefix="talking-face-code-") as folder:
        code = Path(folder) / "talking_face"
        shutil.copytree(Path(talking_face.__file__).parent, code, ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
        return mlflow.pyfunc.log_model(
            name=artifact_path,
            python_model=TalkingFacePyfunc(),
            artifacts={BUNDLE_ARTIFACT: str(bundle_path)},
            signature=SIGNATURE,
            pip_requirements=pip_requirements(),
            code_paths=[str(code)],
            registered_model_name=registered_model_name,
        )
