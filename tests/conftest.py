"""Shared fixtures: the real GRID clips beside the repository, and a quiet, offline environment."""

import os
from pathlib import Path

import pytest

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
