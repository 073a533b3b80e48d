"""A throwaway copy of the whole project (code, conf, dvc.yaml, scripts, notebooks) as a fresh git + DVC
repository, with parameters small enough for the whole chain to run in two to three minutes on two cores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.project import DATA_FOLDERS, PROJECT_ROOT

COPIED = ["pyproject.toml", "requirements.lock", ".telemetry", ".gitignore", ".dvcignore", "dvc.yaml", "kedro.yml", "Makefile"]
COPIED_FOLDERS = ["src", "conf", "scripts", "notebooks"]

# crop 32 needs the smaller discriminator and generator; two speakers give one train and one unseen speaker.
TINY_PARAMETERS = {
    "parameters_sample_data.yml": {"sample_data": {"n_speakers": 2, "clips_per_speaker": 2, "seconds": 1.2, "contact_sheet_frames": 2}},
    "parameters_features.yml": {"features": {"extract": {"crop_size": 32}, "num_cpus": 2, "n_panels": 1}},
    "parameters_pretrain.yml": {
        "pretrain": {"steps": 2, "batch_size": 4, "log_every": 1, "image_every": 100, "checkpoint_every": 2},
        "sync_expert": {"steps": 2, "batch_size": 4, "log_every": 1, "image_every": 100, "checkpoint_every": 2},
    },
    "parameters_train.yml": {
        "train": {"steps": 3, "batch_size": 2, "rollout_frames": 3, "log_every": 1, "image_every": 100, "checkpoint_every": 3},
        "calibration": {"strengths": [1.0, 0.5], "max_clips": 1},
    },
    "parameters_model.yml": {
        "model": {"overrides": {"discriminator": {"n_layers": 2}, "generator": {"base_channels": 8}}},
        "ray": {"num_cpus": 2, "resources_per_worker": {"CPU": 1}},
    },
    "parameters_evaluate.yml": {
        "evaluate": {
            "splits": ["test_unseen"], "max_clips_per_split": 1, "n_videos": 1, "panel_size": 64, "strip_frames": 2,
            "metrics": {"identity_frames": 2},
        }
    },
}


def merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def set_parameters(project: Path, file_name: str, update: dict) -> None:
    """Merges `update` into conf/base/<file_name> (where DVC reads its params too)."""
    path = project / "conf" / "base" / file_name
    path.write_text(yaml.safe_dump(merge(yaml.safe_load(path.read_text()), update), sort_keys=False))


def environment() -> dict[str, str]:
    """The environment a user has with the project's virtual environment active."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", GX_ANALYTICS_ENABLED="False", RAY_USAGE_STATS_ENABLED="0")
    env.update(MPLBACKEND="Agg", DVC_NO_ANALYTICS="1")
    return env


def run(project: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `command` in `project` as a user would in a shell, output captured."""
    result = subprocess.run(command, cwd=project, env=environment(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def make_dvc_project(folder: Path, remote: Path) -> Path:
    """Copies the project's tracked layout into `folder`, makes it a fresh git + DVC repository whose
    default remote (`store`, as in .dvc/config) is moved to `remote` via config.local, and shrinks the
    parameters to TINY_PARAMETERS."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints")
    for name in COPIED:
        shutil.copy(PROJECT_ROOT / name, folder / name)
    for name in COPIED_FOLDERS:
        shutil.copytree(PROJECT_ROOT / name, folder / name, ignore=ignore)
    local = folder / "conf" / "local"
    shutil.rmtree(local)
    local.mkdir()
    for name in DATA_FOLDERS:
        (folder / "data" / name).mkdir(parents=True)
    run(folder, "git", "init", "-q")
    run(folder, "dvc", "init", "-q")
    shutil.copy(PROJECT_ROOT / ".dvc" / "config", folder / ".dvc" / "config")
    run(folder, "dvc", "remote", "modify", "--local", "store", "url", str(remote))
    for file_name, update in TINY_PARAMETERS.items():
        set_parameters(folder, file_name, update)
    return folder


@dataclass
class ReproducedProject:
    path: Path
    remote: Path
    log: str  # what the first `dvc repro` printed


@pytest.fixture(scope="session")
def reproduced_project(tmp_path_factory) -> ReproducedProject:
    """A fresh copy of the project after one `dvc repro` of the whole chain (shared by the DVC, notebook and
    retraining tests; each leaves the project in a state the next can start from)."""
    root = tmp_path_factory.mktemp("dvc")
    (root / "project").mkdir()
    project = make_dvc_project(root / "project", root / "remote")
    result = run(project, "dvc", "repro")
    return ReproducedProject(project, root / "remote", result.stdout + result.stderr)
