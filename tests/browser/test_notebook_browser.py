"""The dashboard notebook, run in real JupyterLab and Notebook 7, watched in Chromium."""

from __future__ import annotations

import re
import shutil
import sys
import urllib.error
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.util import ServerProcess, get_json, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.notebook]

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
TOKEN = "finflow-test-token"
MONEY = re.compile(r"^\$[\d,]+\.\d\d$")
# Sequence numbers of the chart source(s) in the page's Bokeh documents.
CHART_SEQ_JS = """() => {
  const out = []
  for (const doc of (window.Bokeh?.documents ?? [])) {
    for (const model of doc._all_models.values()) {
      if (model.constructor.__name__ !== "ColumnDataSource") { continue }
      const data = model.data
      const column = (name) => (data instanceof Map ? data.get(name) : data[name])
      if (column("seq") != null && column("time") != null) { out.push(Array.from(column("seq"))) }
    }
  }
  return out
}"""


@pytest.fixture
def jupyterlab(tmp_path):
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, tmp_path)
    lab = ServerProcess(
        "--no-browser",
        f"--ServerApp.token={TOKEN}",
        f"--ServerApp.root_dir={tmp_path}",
        "--ServerApp.ip=127.0.0.1",
        "--allow-root",
        cmd=[sys.executable, "-m", "jupyterlab"],
    )
    lab.start(timeout=120, ready_path=f"/api/status?token={TOKEN}")
    yield lab
    lab.stop()


def _kernel_idle(server) -> bool:
    try:
        kernels = get_json(f"{server.url}/api/kernels?token={TOKEN}")
    except urllib.error.HTTPError:  # the kernel manager answers 500 while a kernel starts
        return False
    return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


@pytest.mark.parametrize(
    "path",
    ["/lab/tree/live_portfolio.ipynb", "/notebooks/live_portfolio.ipynb"],
    ids=["jupyterlab", "notebook7"],
)
def test_live_dashboard_notebook_updates_in_jupyter(jupyterlab, page, path):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{jupyterlab.url}{path}?token={TOKEN}")
    expect(page.locator(".jp-Notebook")).to_be_visible(timeout=60_000)
    # Run only once the kernel is up, or Run All may be swallowed by its start-up.
    wait_until(lambda: _kernel_idle(jupyterlab), timeout=60)
    page.get_by_text("Run", exact=True).first.click()
    page.get_by_text("Run All Cells", exact=True).click()

    total = page.locator('[data-kpi="total_value"]')
    expect(total).to_have_text(MONEY, timeout=90_000)
    expect(total).not_to_have_text(total.inner_text(), timeout=20_000)

    # After many pushes the chart holds every tick, in order.
    def chart_seq():
        sources = page.evaluate(CHART_SEQ_JS)
        return sources[0] if sources else []

    start = len(chart_seq())
    expect(total).not_to_have_text(total.inner_text(), timeout=20_000)
    expect(total).not_to_have_text(total.inner_text(), timeout=20_000)
    seq = chart_seq()
    assert len(seq) > start
    assert seq == list(range(seq[0], seq[0] + len(seq)))

    page.get_by_role("button", name="Stop", exact=True).click()
    age = page.locator('[data-kpi="age"]')
    expect(age).to_have_text(re.compile(r"^[1-9]\d* s ago$"), timeout=20_000)
    frozen = total.inner_text()
    # The market ticks 4 times a second; an update would reset the age to "just now".
    expect(age).to_have_text(re.compile(r"^([4-9]|\d{2,}) s ago$"), timeout=20_000)
    assert total.inner_text() == frozen

    page.get_by_role("button", name="Start", exact=True).click()
    expect(total).not_to_have_text(frozen, timeout=20_000)

    foreign = [u for u in requests if not u.startswith((jupyterlab.url, "data:", "blob:"))]
    assert foreign == []
