"""A replay in Chromium: the file's date beside the last update, then the end."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.util import ServerProcess

pytestmark = pytest.mark.browser

ROWS = 25
DATE = '[data-kpi="market_date"]'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    lines = ["date,XOM,CVX"]
    lines += [f"2022-02-{day:02d},{60 + day}.5,{120 + 2 * day}.25" for day in range(1, ROWS + 1)]
    path = tmp_path_factory.mktemp("replay") / "energy.csv"
    path.write_text("\n".join(lines) + "\n")
    process = ServerProcess("--replay", str(path), "--tick", "0.3", "--interval", "0.3").start()
    yield process
    process.stop()


def test_the_page_shows_the_replayed_date_and_says_when_the_replay_has_finished(server, page):
    page.goto(f"{server.url}/portfolio")
    total = page.locator('[data-kpi="total_value"]')
    expect(total).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))
    expect(page.locator(DATE)).to_have_text(re.compile(r"^Replaying 2022-02-\d\d$"))
    # The date shown is that of the newest row on the page, and the total is its value
    # (one unit of each symbol).
    shown = page.evaluate(
        """(selector) => {
          const data = [...Bokeh.documents[0].all_models].find(
            (m) => m.constructor.__name__ === "ColumnDataSource" && "seq" in m.data).data
          const n = data.seq.length
          const find = (node) => {  // through every shadow root
            const hit = node.querySelector(selector)
            if (hit) { return node }
            for (const e of node.querySelectorAll("*")) {
              if (e.shadowRoot) { const r = find(e.shadowRoot); if (r) { return r } }
            }
            return null
          }
          const root = find(document)
          return {seq: data.seq[n - 1], xom: data.XOM[n - 1], cvx: data.CVX[n - 1],
                  date: root.querySelector(selector).textContent,
                  total: root.querySelector('[data-kpi="total_value"]').textContent}
        }""",
        DATE,
    )
    day = shown["seq"] + 1
    assert shown["date"] == f"Replaying 2022-02-{day:02d}"
    assert (shown["xom"], shown["cvx"]) == (60 + day + 0.5, 120 + 2 * day + 0.25)
    assert shown["total"] == f"${shown['xom'] + shown['cvx']:,.2f}"
    expect(page.locator(".ff-status")).to_have_text("\u25cf Replay finished", timeout=30_000)
    expect(page.locator(DATE)).to_have_text(f"Replaying 2022-02-{ROWS:02d}")
    assert total.inner_text() == f"${60 + ROWS + 0.5 + 120 + 2 * ROWS + 0.25:,.2f}"


def test_what_ifs_from_the_replayed_history_recompute_as_a_control_changes(server, page):
    page.goto(f"{server.url}/explore")
    expect(page.get_by_text("Replay of energy.csv", exact=False)).to_be_visible()
    note = page.locator(".ff-note")
    expect(note).to_contain_text("10,000 paths \u00d7 252 days, computed in")
    expect(page.get_by_text("VaR 99%")).to_be_visible()
    page.get_by_role("combobox").select_option("1000")
    expect(note).to_contain_text("1,000 paths \u00d7 252 days")
    # The fan chart holds the new run's bands: 65 points, ordered, starting today.
    bands = page.evaluate(
        """() => {
          const s = [...Bokeh.documents[0].all_models].find(
            (m) => m.constructor.__name__ === "ColumnDataSource" && "p50" in m.data)
          return Object.fromEntries(["step", "p5", "p50", "p95"].map(
            (k) => [k, Array.from(s.data[k])]))
        }"""
    )
    assert len(bands["step"]) == 65 and bands["step"][-1] == 252
    rows = zip(bands["p5"], bands["p50"], bands["p95"], strict=True)
    assert all(lo <= mid <= hi for lo, mid, hi in rows)
    assert bands["p5"][0] == bands["p95"][0]  # today: one value
