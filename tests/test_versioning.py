"""The data version: from dvc.lock when it matches the data, else from the feature files' own headers;
the hook that records it on the MLflow run of a training node; and the environment every run records."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import mlflow
import numpy as np
import yaml
from kedro.pipeline import node

from talking_face.hooks import DATA_VERSION_TAG, DataVersionHook
from talking_face.provenance import LOCK_FILE, environment_tags, installed_packages
from talking_face.versioning import FEATURE_DIR, data_version, locked_outputs
from tests.project import tracking_put_back


def write_features(root, clips: dict[str, str]) -> None:
    """npz feature files holding only the header keys: {clip_id: content_hash}."""
    folder = root / FEATURE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for clip_id, content_hash in clips.items():
        np.savez(folder / f"{clip_id}.npz", content_hash=np.array(content_hash), params_hash=np.array("p1"), frames=np.zeros(3))


def test_without_dvc_the_version_comes_from_the_feature_headers(tmp_path):
    write_features(tmp_path / "a", {"spk1_c1": "h1", "spk2_c1": "h2"})
    version = data_version(tmp_path / "a")
    assert version.startswith("features:") and data_version(tmp_path / "a") == version
    # Same content elsewhere (another clone, other file times): same version.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert data_version(tmp_path / "b") == version
    write_features(tmp_path / "b", {"spk2_c1": "h2-recut"})
    assert data_version(tmp_path / "b") != version


def test_a_lock_that_dvc_cannot_confirm_is_not_trusted(tmp_path):
    write_features(tmp_path, {"spk1_c1": "h1"})
    lock = {"schema": "2.0", "stages": {"features": {"cmd": "kedro run --pipeline=features", "outs": [
        {"path": "data/04_feature/feature_summary.parquet", "hash": "md5", "md5": "b" * 32},
        {"path": "data/04_feature/clips", "hash": "md5", "md5": "a" * 32 + ".dir"},
    ]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert [out["path"] for out in locked_outputs(tmp_path / "dvc.lock", "features")] == sorted(out["path"] for out in lock["stages"]["features"]["outs"])
    assert data_version(tmp_path).startswith("features:")  # not a DVC repository: the files speak for themselves


def test_hook_tags_the_run_of_a_training_node_once(tmp_path):
    write_features(tmp_path, {"spk1_c1": "h1"})
    hook = DataVersionHook()
    hook.after_context_created(type("Context", (), {"project_path": tmp_path})())
    trains = node(lambda paths: paths, "training_feature_paths", "model", name="trains")
    ingests = node(lambda params: params, "params:ingest", "manifest", name="ingests")
    with tracking_put_back():
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
        # An explicit experiment: earlier tests leave another store's experiment selected in this process.
        with mlflow.start_run(experiment_id=mlflow.create_experiment("hook-test")) as run:
            hook.before_node_run(ingests, {})
            assert DATA_VERSION_TAG not in mlflow.get_run(run.info.run_id).data.tags
            hook.before_node_run(trains, {})
            assert mlflow.get_run(run.info.run_id).data.tags[DATA_VERSION_TAG] == data_version(tmp_path)
        hook.before_node_run(trains, {})  # no active run (tracking disabled): nothing to tag, no error


def test_environment_tags_name_the_commit_the_packages_and_the_lock(tmp_path):
    git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True)  # noqa: E731
    assert "mlflow.source.git.commit" not in environment_tags(tmp_path)  # not a repository: no commit to name
    git("init", "-q")
    (tmp_path / LOCK_FILE).write_text("torch==2.13.0\n")
    git("add", LOCK_FILE)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "lock")
    tags = environment_tags(tmp_path)
    assert tags["mlflow.source.git.commit"] == git("rev-parse", "HEAD").stdout.strip() and tags["git_dirty"] == "false"
    assert tags["environment.lock_sha256"] == hashlib.sha256(b"torch==2.13.0\n").hexdigest()[:16]
    assert len(tags["environment.packages_sha256"]) == 16 and any(line.startswith("torch==") for line in installed_packages())
    (tmp_path / LOCK_FILE).write_text("torch==2.14.0\n")
    changed = environment_tags(tmp_path)
    assert changed["git_dirty"] == "true" and changed["environment.lock_sha256"] != tags["environment.lock_sha256"]
