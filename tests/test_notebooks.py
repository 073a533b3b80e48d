"""The notebooks run top to bottom on the project after `dvc repro` (sample data, features, a tiny model,
its MLflow runs), and are committed without outputs."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.project import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def test_the_two_notebooks_are_there():
    assert [path.name for path in NOTEBOOKS] == ["01_data_and_features.ipynb", "02_results.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"cell {index} holds outputs: clear them before committing (Jupyter: Edit > Clear Outputs of All Cells)"
            )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_on_the_sample_project(path, reproduced_project, monkeypatch):
    monkeypatch.setenv("TALKING_FACE_PROJECT", str(reproduced_project.path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # figures become outputs
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    figures = [output for cell in notebook.cells for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]
    expected = sum("plt.show()" in cell.source or "feature_panel(" in cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert len(figures) >= expected > 0
