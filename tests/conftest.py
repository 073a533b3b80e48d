"""Shared fixtures: the real GRID clips beside the repository, and a quiet, offline environment."""

import os
from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling

from tests.dvc_project import reproduced_project  # noqa: F401  (the project after `dvc repro`, shared)

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GRID_DIR = PROJECT_ROOT.parent / "shared" / "data" / "grid"


@pytest.fixture(scope="session")
def grid_dir() -> Path:
    if not (GRID_DIR / "speakers.csv").exists():
        pytest.skip(f"real GRID clips not found at {GRID_DIR} (../shared/data/grid beside the repository)")
    return GRID_DIR


@pytest.fixture(scope="module")
def local_ray():
    """A local two-CPU Ray for the module, started fresh: one an earlier test in this worker left running
    (a training run keeps its Ray for the next) would refuse these settings."""
    ray = pytest.importorskip("ray")
    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


# The test files that share the reproduced project (tests/dvc_project.py): one worker runs them all, in order.
REPRODUCED_PROJECT_FILES = {"test_dvc", "test_notebooks", "test_portable", "test_retrain", "test_tracking_server"}


class FileScheduling(LoadFileScheduling):
    """`--dist loadfile` (make test), with the reproduced project's files as one unit: each worker runs whole
    files, so module fixtures are built once and the project's shared copy once. (`--dist loadgroup` with
    marks added here would say it more directly, but pytest 9.2 no longer lets xdist group by them:
    pytest-dev/pytest-xdist#1386.)"""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return "reproduced project" if Path(path).stem in REPRODUCED_PROJECT_FILES else path


def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") == "loadfile":
        return FileScheduling(config, log)
    return None
