"""The MLflow model registry as the gate sees it: versions found by content, aliases, metric tags, and a
registered version's model bundle loaded back for re-evaluation."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from talking_face.conditioning.bundle import TalkingFaceModel

CHAMPION, CHALLENGER = "champion", "challenger"
CONTENT_HASH = "content_hash"  # bundle_hash of the registered model bundle
DATA_VERSION = "data_version"  # data version of the run that registered the version
METRICS_DATA_VERSION = "metrics_data_version"  # data version the metrics.* tags were measured on
METRICS_EVALUATION_VERSION = "metrics_evaluation_version"  # test clips + metric parameters of the metrics.* tags
DECISION, REASON, COMPARED_WITH = "promotion.decision", "promotion.reason", "promotion.compared_with"
METRIC_PREFIX = "metrics."
REGISTRY_EXPERIMENT = "talking_face_registry"


@contextmanager
def tracking(uri: str | None) -> Iterator[MlflowClient]:
    """A client on tracking URI `uri` (None: the current one, e.g. what kedro-mlflow set). Model logging
    goes through MLflow's fluent API, so the process-wide tracking URI points at `uri` meanwhile and is put
    back afterwards (unset again if it was unset); the registry follows it unless one is set explicitly."""
    if uri is None:
        yield MlflowClient()
        return
    was_set, previous = mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(tracking_uri=uri, registry_uri=mlflow.get_registry_uri())
    finally:
        mlflow.set_tracking_uri(previous if was_set else None)


def registry_experiment(client: MlflowClient) -> str:
    """The id of the experiment for registrations outside a Kedro run (created, or restored, on demand):
    explicit, since the process may have last used an experiment of another store."""
    experiment = client.get_experiment_by_name(REGISTRY_EXPERIMENT)
    if experiment is None:
        return client.create_experiment(REGISTRY_EXPERIMENT)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of registered model `name`, oldest first ([] when the model is not registered)."""
    try:
        found = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda version: int(version.version))


def find_by_content(client: MlflowClient, name: str, content_hash: str) -> ModelVersion | None:
    """The oldest version of `name` whose bundle has `content_hash`, if any."""
    matches = [version for version in versions(client, name) if version.tags.get(CONTENT_HASH) == content_hash]
    return matches[0] if matches else None


def get_version(client: MlflowClient, name: str, version: int | str) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise ValueError(f"models:/{name}/{version}: no such registered model version") from None


def by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def metric_tags(summary: dict[str, float]) -> dict[str, str]:
    return {f"{METRIC_PREFIX}{key}": repr(float(value)) for key, value in summary.items()}


def version_metrics(version: ModelVersion | None) -> dict[str, float]:
    """The evaluation summary stored in a version's metrics.* tags ({} for None)."""
    if version is None:
        return {}
    tags = version.tags or {}
    return {key[len(METRIC_PREFIX):]: float(value) for key, value in tags.items() if key.startswith(METRIC_PREFIX)}


def set_tags(client: MlflowClient, name: str, version: int | str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))


def replace_metrics(
    client: MlflowClient, version: ModelVersion, summary: dict[str, float], tags: dict[str, str]
) -> None:
    """Makes the version's metrics.* tags exactly `summary` (stale keys deleted) and sets `tags`."""
    stale = set(version_metrics(version)) - set(summary)
    for key in stale:
        client.delete_model_version_tag(version.name, version.version, f"{METRIC_PREFIX}{key}")
    set_tags(client, version.name, version.version, {**metric_tags(summary), **tags})


def load_version_model(name: str, version: int | str, tracking_uri: str | None = None) -> TalkingFaceModel:
    """The model bundle inside a registered version's artifacts (the one .pt file the pyfunc model carries)."""
    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="registered-") as folder:
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=folder, tracking_uri=tracking_uri
        ))
        bundles = sorted(local.rglob("*.pt"))
        if len(bundles) != 1:
            raise ValueError(f"{uri}: expected one model bundle (.pt) in its artifacts, found {len(bundles)}")
        return TalkingFaceModel.load(bundles[0])
