"""The retraining steps of the scheduled workflow (scripts/retrain.sh), run as a user runs them locally, on
the project after `dvc repro`: pull, the named Kedro run, dvc commit, dvc push, then the promotion gate."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.dvc_project import run, set_parameters
from tests.project import PROJECT_ROOT

GATE = PROJECT_ROOT / "scripts" / "promotion_gate.py"


@pytest.mark.slow
def test_retrain_pushes_the_new_data_and_then_fails_at_a_refusing_gate(reproduced_project, tmp_path):
    project = reproduced_project.path
    # A gate no model can pass: the metric it asks for is never measured.
    set_parameters(project, "parameters_register.yml", {"register": {"gate": {"against_baseline": [{"metric": "unmeasured", "better": "lower"}]}}})
    # One more step than the project's earlier runs: training is deterministic, and the same bundle again
    # would be the version the earlier tests may have made champion ("already champion", nothing to refuse).
    set_parameters(project, "parameters_train.yml", {"train": {"steps": 4}})
    remote = tmp_path / "ci-remote"  # as CI passes $DVC_REMOTE_URL from a secret
    result = run(project, "env", f"DVC_REMOTE_URL={remote}", "scripts/retrain.sh", check=False)
    log = result.stdout + result.stderr

    assert result.returncode == 1, log[-3000:]
    steps = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("retrain: ") and ": " in line]
    assert [step for step in steps if step in ("remote", "pull", "train", "commit", "push", "gate")] == ["remote", "pull", "train", "commit", "push", "gate"]
    decision = json.loads((project / "data/08_reporting/promotion.json").read_text())
    assert decision["promoted"] is False and "unmeasured" in decision["reason"]
    assert "promotion gate: REFUSED" in result.stderr and decision["reason"] in result.stderr
    # The run's data is recorded in dvc.lock and is on the remote all the same.
    assert "up to date" in run(project, "dvc", "status").stdout
    assert "in sync" in run(project, "dvc", "status", "--cloud").stdout
    assert any(path.is_file() for path in remote.rglob("*"))


def gate(folder, decision: dict | None, summary=None) -> subprocess.CompletedProcess:
    """The gate step on a decision file in `folder` (none when `decision` is None)."""
    folder.mkdir(exist_ok=True)
    path = folder / "promotion.json"
    if decision is not None:
        path.write_text(json.dumps(decision))
    env = {"GITHUB_STEP_SUMMARY": str(summary)} if summary else {}
    return subprocess.run([sys.executable, str(GATE), str(path)], capture_output=True, text=True, env=env, cwd=folder)


def test_gate_step_passes_a_promoted_model_and_writes_the_job_summary(tmp_path):
    summary = tmp_path / "summary.md"
    decision = {"model_name": "m", "version": 4, "decision": "promoted", "reason": "lmd_mouth 1.2 < 1.9", "promoted": True}
    result = gate(tmp_path, decision, summary)
    assert result.returncode == 0 and "PASSED" in result.stdout and "m version 4: promoted" in result.stdout
    assert "passed" in summary.read_text() and "lmd_mouth 1.2 < 1.9" in summary.read_text()


def test_gate_step_refuses_with_the_reason_or_without_a_decision(tmp_path):
    refused = {"model_name": "m", "version": 5, "decision": "rejected", "reason": "ssim 0.5 not within 0.02 of 0.7", "promoted": False}
    result = gate(tmp_path, refused)
    assert result.returncode == 1 and "REFUSED" in result.stderr and "ssim 0.5 not within 0.02 of 0.7" in result.stderr
    missing = gate(tmp_path / "no_run", None)
    assert missing.returncode == 1 and "no decision" in missing.stderr
