"""Every notebook runs top to bottom on a real kernel, and is stored without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebook

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {
        "live_portfolio.ipynb",
        "analyst_experiments.ipynb",
        "real_data.ipynb",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


def execute(path: Path, tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on any error
    return notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path):
    notebook = execute(path, tmp_path)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


def test_dashboard_notebook_renders_panel_models(tmp_path):
    notebook = execute(
        NOTEBOOKS[[p.name for p in NOTEBOOKS].index("live_portfolio.ipynb")], tmp_path
    )
    bundles = [
        output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type in ("display_data", "execute_result")
    ]
    # Panel's rendered model: its mimetype carries the Bokeh document to the page.
    rendered = [b for b in bundles if "application/vnd.holoviews_exec.v0+json" in b]
    assert rendered, [list(b) for b in bundles]
    html = "".join(b.get("text/html", "") for b in rendered)
    # The embedded document holds the dashboard's models, not just a text repr.
    for name in ("ColumnDataSource", "KpiCards", "HoldingsTable", "total_value", '"Start"'):
        assert name in html, name
