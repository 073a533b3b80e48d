"""The README's serving commands run exactly as printed, from a project folder in the state of a fresh clone
after `make train` (as far as serving goes), with a PATH that does not hold the venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.processes import stop_group, wait_until_answers

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)


def readme_line(start: str) -> str:
    """The README's command line that starts with `start`, as printed (its trailing comment cut)."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(start):
            return line.split("  #")[0].strip()
    raise AssertionError(f"README.md prints no command line starting with {start!r}")


def readme_python_block(after: str) -> str:
    """The first ```python block of the README after the line starting with `after`."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\n", text.index("\n" + after)) + len("```python\n")
    return text[start : text.index("```", start)]


def trained_project(folder: Path, bundle: Path) -> Path:
    """`folder` as a clone after `make train`: the Makefile, pyproject.toml and the lock, the venv (`make install`'s,
    linked), the model file, and mlflow.db with the model registered as talking-face-man@champion."""
    import mlflow

    from talking_face.serving.pyfunc import log_pyfunc_model

    stamp = VENV / ".installed"
    if VENV.name != ".venv" or not stamp.is_file():
        pytest.skip(f"the tests do not run from the venv `make install` makes ({VENV} has no .installed stamp)")
    folder.mkdir(parents=True, exist_ok=True)
    before_stamp = stamp.stat().st_mtime - 60
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy2(ROOT / name, folder / name)
        os.utime(folder / name, (before_stamp, before_stamp))  # make sees an installed venv
    (folder / ".venv").symlink_to(VENV)
    (folder / "data/06_models").mkdir(parents=True)
    shutil.copy2(bundle, folder / "data/06_models/talking_face_model.pt")
    was_set, previous, cwd = mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri(), Path.cwd()
    os.chdir(folder)  # mlflow.db and the artifacts in the project, as a Kedro run leaves them
    try:
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")  # absolute: MLflow caches stores by URI
        # An explicit experiment, not mlflow.set_experiment: that would stay active for later tests' runs.
        experiment_id = mlflow.MlflowClient().create_experiment("talking-face")
        with mlflow.start_run(experiment_id=experiment_id):
            model_file = str(folder / "data/06_models/talking_face_model.pt")
            info = log_pyfunc_model(model_file, registered_model_name="talking-face-man")
        mlflow.MlflowClient().set_registered_model_alias("talking-face-man", "champion", info.registered_model_version)
    finally:
        os.chdir(cwd)
        mlflow.set_tracking_uri(previous if was_set else None)
    return folder


def plain_environment() -> dict:
    """This environment without the venv on PATH and without a tracking URI: a new user's shell."""
    venv_bin = (VENV / "bin").resolve()
    entries = os.environ.get("PATH", "").split(os.pathsep)
    path = [entry for entry in entries if entry and Path(entry).resolve() != venv_bin]
    env = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "VIRTUAL_ENV")}
    return {**env, "PATH": os.pathsep.join(path)}


def port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT does not block
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def running_command(line: str, project: Path, port: int, ready_path: str, log: Path, timeout_s: float = 120):
    """Runs `line` with bash in `project` until it answers http://127.0.0.1:`port``ready_path`; stops it after."""
    if not port_is_free(port):
        pytest.skip(f"port {port}, which the README's command uses, is busy on this machine")
    with log.open("w") as output:
        process = subprocess.Popen(
            ["bash", "-c", line], cwd=project, env=plain_environment(), stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_answers(f"http://127.0.0.1:{port}{ready_path}", process, log, timeout_s, f"`{line}`")
        yield process
    finally:
        stop_group(process)
