"""A team's MLflow tracking server: `mlflow server` on a free loopback port with a SQLite database and an
artifact store it serves over HTTP. With MLFLOW_TRACKING_URI pointing at it, a short `kedro run` (GAN
training from the reproduced project's features, evaluation, registration), `talking-face promote` and
`talking-face generate --model models:/...` work through the server alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from talking_face.media.video import probe
from tests.dvc_project import environment
from tests.generation_inputs import photo, speech, write_audio, write_image
from tests.processes import free_port, stop_group, wait_until_answers

pytestmark = pytest.mark.slow

MODEL = "talking-face-man"


@pytest.fixture
def tracking_server(tmp_path):
    """http://127.0.0.1:<port> of a running `mlflow server`, stopped (its whole process group) afterwards."""
    folder = tmp_path / "server"
    folder.mkdir()
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts", "--workers", "1",
    ]
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{uri}/health", server, folder / "server.log", 90, "mlflow server")
        yield uri, folder
    finally:
        stop_group(server, timeout_s=20)
        log.close()


def run_with(uri: str, folder: Path, *command: str) -> subprocess.CompletedProcess:
    env = {**environment(), "MLFLOW_TRACKING_URI": uri}
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def test_train_register_promote_and_generate_through_a_tracking_server(reproduced_project, tracking_server, tmp_path):
    uri, server_folder = tracking_server
    project = tmp_path / "project"
    shutil.copytree(reproduced_project.path, project, symlinks=True)
    shutil.rmtree(project / "mlruns", ignore_errors=True)
    (project / "mlflow.db").unlink()
    bin_folder = Path(sys.executable).parent

    run_with(uri, project, str(bin_folder / "kedro"), "run", "--pipeline=train", "--from-nodes=train_man_gan")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    [version] = client.search_model_versions(f"name='{MODEL}'")
    runs = {run.info.run_name: run for run in client.search_runs([client.get_experiment_by_name("talking_face").experiment_id])}
    assert runs["train"].data.tags["data_version"] == version.tags["data_version"]
    assert version.description.startswith(f"# {MODEL}") and "## Evaluation" in version.description
    # Artifacts went to the server's store over HTTP, none to the project.
    assert list((server_folder / "artifacts").rglob("MLmodel")) and not (project / "mlruns").exists()
    assert not (project / "mlflow.db").exists()

    promoted = run_with(uri, project, str(bin_folder / "talking-face"), "promote", "--version", "1", "--force")
    assert promoted.stdout.startswith(f"{MODEL} version 1: ")
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"

    image = write_image(tmp_path / "face.jpg", photo(192))
    audio = write_audio(tmp_path / "speech.wav", speech(1.0))
    out = tmp_path / "out.mp4"
    run_with(uri, tmp_path, str(bin_folder / "talking-face"), "generate", "--image", str(image), "--audio", str(audio),
             "--out", str(out), "--model", f"models:/{MODEL}@champion", "--quiet")
    assert probe(out).frame_count == 25
