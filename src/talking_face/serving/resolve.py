"""A model reference as users write it -> the TalkingFaceModel it names.

Accepted: a registry URI (`models:/talking-face-man@champion`, `models:/talking-face-man/3`), a run's model
(`runs:/<run id>/model`, or `runs:/<run id>` for the default artifact path), any other MLflow model URI, a
local MLflow model directory (one holding an `MLmodel` file), or a model bundle file (`.pt`). Without a reference
(`default_model`), the registry's champion, else the pretrained model that ships with the package. Registry and run
URIs are looked up in MLFLOW_TRACKING_URI when set, else in the tracking URI this process already uses (as
in a Kedro run with kedro-mlflow), else in `sqlite:///mlflow.db` in the working directory.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.pretrained import SHIPPED_MODEL

DEFAULT_MODEL_NAME = "talking-face-man"
DEFAULT_MODEL_URI = f"models:/{DEFAULT_MODEL_NAME}@champion"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_PATH = "model"


class ModelNotFound(ValueError):
    """A model reference that does not lead to a talking-face model; the message is one line."""


def tracking_uri(in_process: bool = True) -> str:
    """MLFLOW_TRACKING_URI, else (with `in_process`) the one this process already set, as kedro-mlflow does in
    a Kedro run, else DEFAULT_TRACKING_URI."""
    import mlflow

    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return mlflow.get_tracking_uri() if in_process and mlflow.is_tracking_uri_set() else DEFAULT_TRACKING_URI


@contextmanager
def _tracking(uri: str):
    """The process-wide tracking URI set to `uri` for the block, then put back as it was."""
    import mlflow

    was_set, previous = mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous if was_set else None)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def missing_sqlite_store(uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI when it does not exist (MLflow would create it)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    return None if path.is_file() else path


def load_model(reference: str | os.PathLike, store: str | None = None) -> TalkingFaceModel:
    """The model `reference` names (see the module docstring), registry and run URIs looked up in the
    tracking URI `store` (None: `tracking_uri()`); ModelNotFound when it does not resolve."""
    reference = str(reference)
    store = store or tracking_uri()
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", reference):
        return _load_mlflow_model(reference, store)
    path = Path(reference)
    if path.is_file():
        try:
            return TalkingFaceModel.load(path)
        except ValueError as error:
            raise ModelNotFound(_one_line(error)) from None
    if path.is_dir():
        if not (path / "MLmodel").is_file():
            raise ModelNotFound(f"{path}: not an MLflow model directory (no MLmodel file in it)")
        return _load_mlflow_model(str(path.resolve()), store)
    raise ModelNotFound(f"{reference}: no such model file or directory, and not a models:/ or runs:/ URI")


def _load_mlflow_model(uri: str, store: str) -> TalkingFaceModel:
    import mlflow
    from mlflow.exceptions import MlflowException

    from talking_face.serving.pyfunc import TalkingFacePyfunc

    if uri.startswith(("models:/", "runs:/")):
        missing = missing_sqlite_store(store)
        if missing is not None:
            hint = "set MLFLOW_TRACKING_URI or pass --model"
            raise ModelNotFound(f"{uri}: no MLflow tracking database at {missing.resolve()} ({hint})")
        if re.fullmatch(r"runs:/[^/]+/?", uri):
            uri = f"{uri.rstrip('/')}/{DEFAULT_ARTIFACT_PATH}"
    try:
        with _tracking(store):
            python_model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except (MlflowException, OSError) as error:
        message = error.message if isinstance(error, MlflowException) else str(error)
        raise ModelNotFound(f"{uri}: {_one_line(message)}") from None
    if not isinstance(python_model, TalkingFacePyfunc):
        raise ModelNotFound(f"{uri}: an MLflow model, but not a talking-face model")
    return python_model.model


def absolute_sqlite(uri: str) -> str:
    """A `sqlite:///relative/path` URI made absolute: MLflow caches its stores by URI, so a relative one would
    keep reading the first database it opened after the working directory changes."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def has_champion(store: str) -> bool:
    """Whether the registry at `store` has a champion of DEFAULT_MODEL_NAME (False without a registry)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if missing_sqlite_store(store) is not None:
        return False
    try:
        with _tracking(store):
            MlflowClient(registry_uri=store).get_model_version_by_alias(DEFAULT_MODEL_NAME, "champion")
    except MlflowException as error:
        # No registered model (RESOURCE_DOES_NOT_EXIST) or a model without the alias: no champion yet.
        if error.error_code == "RESOURCE_DOES_NOT_EXIST" or "alias champion not found" in error.message:
            return False
        raise ModelNotFound(f"{DEFAULT_MODEL_URI}: {_one_line(error.message)}") from None
    return True


def default_model(store: str | None = None) -> tuple[TalkingFaceModel, str]:
    """The model used when none is named, and one line saying which: the registry's champion when there is
    one (it is the user's own, trained and promoted), else the pretrained model shipped with the package."""
    store = absolute_sqlite(store or tracking_uri())
    if has_champion(store):
        return load_model(DEFAULT_MODEL_URI, store), DEFAULT_MODEL_URI
    if not SHIPPED_MODEL.is_file():
        raise ModelNotFound(f"{DEFAULT_MODEL_URI}: no champion in {store} and no pretrained model installed (pass --model)")
    which = f"the pretrained model {SHIPPED_MODEL.name} shipped with talking-face (no champion in {store})"
    return load_model(SHIPPED_MODEL, store), which
