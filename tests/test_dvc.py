"""The DVC pipeline on a fresh copy of the project with tiny parameters: `dvc repro` runs every stage, a
second one does nothing, a changed parameter reruns only the stages after it, `dvc push` / `dvc pull`
round-trip the data, and the training and register runs, the registered version and promotion.json carry one
data version.

The tests run in file order on one shared project (see tests/dvc_project.py)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import networkx
import numpy as np
import pytest
import yaml
from dvc.repo import Repo
from mlflow.tracking import MlflowClient

from talking_face.provenance import environment_tags
from talking_face.versioning import data_version, locked_outputs
from tests.dvc_project import run, set_parameters

pytestmark = pytest.mark.slow


def stage_names(project) -> list[str]:
    return list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])


def ran(log: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", log)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_repro_from_a_fresh_copy_runs_every_stage_in_order(reproduced_project):
    project = reproduced_project.path
    stages = stage_names(project)
    assert ran(reproduced_project.log) == stages
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(stages)
    for name, stage in lock.items():
        for out in stage.get("outs", []):
            assert (project / out["path"]).exists(), f"{name}: {out['path']} missing"
    history = (project / "data/08_reporting/train_history.csv").read_text().splitlines()
    assert history[0].startswith("step,") and "g_total" in history[0] and len(history) == 1 + 3  # 3 steps logged
    metrics = yaml.safe_load((project / "data/08_reporting/metrics.json").read_text())
    assert any(key.startswith("test_unseen.model.") for key in metrics)


def test_one_data_version_on_the_runs_the_registered_version_and_the_promotion_file(reproduced_project):
    project = reproduced_project.path
    version = data_version(project)
    assert version.startswith("dvc:") and locked_outputs(project / "dvc.lock", "features")
    store = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    experiment = client.get_experiment_by_name("talking_face").experiment_id
    runs = {run.info.run_name: run for run in client.search_runs([experiment])}
    tagged = {name: run.data.tags.get("data_version") for name, run in runs.items()}
    assert tagged["pretrain"] == tagged["train"] == tagged["register"] == version
    assert tagged["ingest"] is None  # only the runs that train or register carry it
    promotion = json.loads((project / "data/08_reporting/promotion.json").read_text())
    registered = client.get_model_version(promotion["model_name"], str(promotion["version"]))
    assert promotion["data_version"] == registered.tags["data_version"] == version
    assert f"data version: `{version}`" in registered.description
    # Every run records the environment it ran in: the installed packages (the same for every stage here)
    # as a list and its digest, and the lock file's digest.
    assert len({run.data.tags["environment.packages_sha256"] for run in runs.values()}) == 1
    lock = environment_tags(project)["environment.lock_sha256"]
    assert all(run.data.tags["environment.lock_sha256"] == lock for run in runs.values())
    train = runs["train"]
    packages = Path(client.download_artifacts(train.info.run_id, "environment/packages.txt", str(project / "..")))
    listed = packages.read_text()
    assert hashlib.sha256(listed.rstrip("\n").encode()).hexdigest()[:16] == train.data.tags["environment.packages_sha256"]
    assert "torch==2.13.0" in listed.replace("+cpu", "")


def test_data_changed_since_the_lock_gets_a_version_of_its_own(reproduced_project, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(reproduced_project.path, copy, symlinks=True)
    first = sorted((copy / "data/04_feature/clips").glob("*.npz"))[0]
    arrays = dict(np.load(first))
    np.savez(first, **{**arrays, "content_hash": np.array("another video")})
    assert data_version(copy).startswith("features:")


def test_second_repro_does_nothing(reproduced_project):
    project = reproduced_project.path
    lock, model = project / "dvc.lock", project / "data/06_models/talking_face_model.pt"
    before = (lock.read_bytes(), model.stat().st_mtime_ns)
    result = run(project, "dvc", "repro")
    assert ran(result.stdout) == []
    assert result.stdout.count("didn't change, skipping") == len(stage_names(project))
    assert (lock.read_bytes(), model.stat().st_mtime_ns) == before


def test_a_changed_parameter_reruns_only_the_stages_after_it(reproduced_project):
    project = reproduced_project.path
    model = project / "data/06_models/talking_face_model.pt"
    model_time = model.stat().st_mtime_ns
    set_parameters(project, "parameters_evaluate.yml", {"evaluate": {"strip_frames": 3}})
    assert ran(run(project, "dvc", "repro").stdout) == ["evaluate", "register"]
    assert model.stat().st_mtime_ns == model_time
    # The DAG behind it: a features parameter would rerun every stage that reads features, and only those.
    with Repo(str(project)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it reads from
        features = next(stage for stage in graph if stage.name == "features")
        assert {stage.name for stage in networkx.ancestors(graph, features)} == {"pretrain", "train", "evaluate", "register"}


def test_push_and_pull_round_trip_the_data(reproduced_project):
    project, remote = reproduced_project.path, reproduced_project.remote
    run(project, "dvc", "push")
    assert any(remote.rglob("*")), "nothing pushed to the remote"
    tracked = [project / "data/06_models/talking_face_model.pt", project / "data/03_primary/manifest.parquet"]
    tracked += sorted((project / "data/04_feature/clips").glob("*.npz"))
    before = {path: digest(path) for path in tracked}

    shutil.rmtree(project / ".dvc/cache")
    shutil.rmtree(project / "data/04_feature/clips")
    for path in tracked[:2]:
        path.unlink()
    assert "deleted" in run(project, "dvc", "status").stdout

    run(project, "dvc", "pull")
    assert {path: digest(path) for path in tracked} == before
    assert "up to date" in run(project, "dvc", "status").stdout
