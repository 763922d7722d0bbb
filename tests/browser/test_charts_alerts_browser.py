"""Charts and alerts in Chromium: the % view, candles that form and close, indicators,
the CSV download, and an alert that fires into a toast and the log."""

from __future__ import annotations

import csv
import io
import math
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.util import ServerProcess, wait_ticks

pytestmark = pytest.mark.browser

TOTAL = '[data-kpi="total_value"]'
MONEY = re.compile(r"^\$[\d,]+\.\d\d$")

# A chart's renderer by name, among the plots' current renderers (BokehJS may still
# hold replaced ones in its document's index of models for a while).
RENDERER = """(name) => {
  for (const m of Bokeh.documents[0].all_models) {
    if (m.constructor.__name__ !== "Plot") { continue }
    for (const r of m.renderers) { if (r.name === name) { return r } }
  }
  return null
}"""
HAS = f"(name) => ({RENDERER})(name) != null"
HAS_NOT = f"(name) => ({RENDERER})(name) == null"
# What BokehJS draws for a renderer (by name): its view's rows and the value of each
# of the glyph's ``fields`` at those rows, computed as the browser computes them.
DRAWN = f"""([name, fields]) => {{
  const r = ({RENDERER})(name)
  if (r == null) {{ return null }}
  const source = r.data_source
  const indices = r.view.filter.compute_indices(source)
  const rows = indices == null ? [...Array(source.get_length()).keys()]
                               : (Array.isArray(indices) ? indices : [...indices])
  const out = {{rows, seq: rows.map((i) => source.data.seq[i]), visible: r.visible}}
  for (const f of fields) {{
    const spec = r.glyph[f] ?? r.glyph.properties[f].get_value()
    const values = spec.expr != null ? spec.expr.v_compute(source) : source.data[spec.field ?? spec]
    out[f] = rows.map((i) => values[i])
  }}
  return out
}}"""
SOURCE = f"""(names) => {{
  const data = ({RENDERER})("total_value").data_source.data
  return Object.fromEntries(names.map((n) => [n, Array.from(data[n])]))
}}"""

AXIS_LABELS = """() => [...Bokeh.documents[0].all_models]
  .filter((m) => m.constructor.__name__ === "LinearAxis").map((m) => m.axis_label)"""


@pytest.fixture(scope="module")
def server():
    process = ServerProcess("--tick", "0.2", "--interval", "0.2", "--seed", "9").start()
    yield process
    process.stop()


def _open(server, page, query=""):
    page.goto(f"{server.url}/portfolio{query}")
    expect(page.locator(TOTAL)).to_have_text(MONEY)
    # the controls are on the page and the first update has arrived
    expect(page.get_by_role("button", name="Candles")).to_have_attribute("aria-pressed", "false")
    expect(page.locator(TOTAL)).not_to_have_text(page.locator(TOTAL).inner_text())


def _drawn(page, name, *fields):
    return page.evaluate(DRAWN, [name, list(fields)])


def _drawn_and_held(page, name, fields, columns):
    """A renderer's drawn values and the source's columns, read at the same moment."""
    return page.evaluate(
        f"([spec, columns]) => [({DRAWN})(spec), ({SOURCE})(columns)]",
        [[name, list(fields)], list(columns)],
    )


def test_prices_show_percent_change_by_default_and_price_one_click_away(server, page):
    _open(server, page)
    expect(page.get_by_role("button", name="% change")).to_have_attribute("aria-pressed", "true")
    assert "Change since open (%)" in page.evaluate(AXIS_LABELS)
    kpi_reference = page.evaluate(f"() => ({RENDERER})('AAPL').glyph.y.expr.args.reference")
    drawn, held = _drawn_and_held(page, "AAPL", ["y"], ["AAPL"])
    prices = held["AAPL"]
    assert len(drawn["y"]) == len(prices) > 5
    for y, price in zip(drawn["y"], prices, strict=True):
        assert y == pytest.approx((price / kpi_reference - 1) * 100)
    assert max(abs(y) for y in drawn["y"]) < 20  # per cent, not 190-dollar prices

    page.get_by_role("button", name="Price", exact=True).click()
    page.wait_for_function(f"() => ({AXIS_LABELS})().includes('Price ($)')")
    drawn, held = _drawn_and_held(page, "AAPL", ["y"], ["AAPL"])
    prices = held["AAPL"]
    assert drawn["y"][-5:] == pytest.approx(prices[-5:])


def test_candles_form_in_place_close_and_indicators_toggle(server, page):
    _open(server, page)
    page.get_by_role("button", name="Candles").click()
    expect(page.get_by_role("button", name="Candles")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function(HAS, arg="candle_bodies")
    assert _drawn(page, "total_value")["visible"] is False
    fields = ("x", "top", "bottom", "fill_color")

    quantities = {"AAPL": 50, "MSFT": 30, "GOOGL": 40, "AMZN": 25, "NVDA": 60, "JPM": 35}

    def candles():  # the bodies, the wicks and the rows they come from, at one moment
        specs = [["candle_bodies", list(fields)], ["candle_wicks", ["y0", "y1"]]]
        return page.evaluate(
            f"([specs, columns]) => [...specs.map(({DRAWN})), ({SOURCE})(columns)]",
            [specs, ["seq", *quantities]],
        )

    # one candle per 10 ticks (sequence numbers 0-9, 10-19, ...), drawn at its last row,
    # over rows in tick order. (Seen once in CI: one read with two candles for one bar,
    # not seen in any run since; the read is repeated for up to 10 s before failing, and
    # a failure shows what was read.)
    deadline = time.monotonic() + 10
    while True:
        bodies, wicks, rows = candles()
        bars = [seq // 10 for seq in bodies["seq"]]
        ordered = all(b > a for a, b in zip(rows["seq"], rows["seq"][1:], strict=False))
        if (ordered and bars == sorted(set(bars))) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    if not ordered:
        seq = rows["seq"]
        at = next(i for i in range(1, len(seq)) if seq[i] <= seq[i - 1])
        raise AssertionError(
            f"rows out of tick order at row {at} of {len(seq)}: {seq[max(0, at - 5) : at + 14]}"
            f"; deliveries {server.feed()['deliveries']}"
        )
    assert bars == sorted(set(bars)), f"candles at rows {bodies['rows'][-6:]}: {bodies['seq'][-6:]}"
    assert bodies["rows"] == wicks["rows"] and len(bodies["rows"]) >= 2
    # each candle agrees with the ticks it aggregates, as the portfolio's value
    values = [sum(rows[s][i] * q for s, q in quantities.items()) for i in range(len(rows["seq"]))]
    closed = bodies["seq"][-2] // 10  # the newest closed bar
    ticks = [v for v, seq in zip(values, rows["seq"], strict=True) if seq // 10 == closed]
    if rows["seq"][0] // 10 < closed:  # the bar's first tick is held
        k = -2
        assert wicks["y1"][k] == pytest.approx(max(ticks))
        assert wicks["y0"][k] == pytest.approx(min(ticks))
        assert bodies["top"][k] == pytest.approx(max(ticks[0], ticks[-1]))
        assert bodies["bottom"][k] == pytest.approx(min(ticks[0], ticks[-1]))
        up = ticks[-1] >= ticks[0]
        assert bodies["fill_color"][k] == ("#16a34a" if up else "#dc2626")
    # the forming candle is drawn at the newest row, from its ticks so far
    assert bodies["seq"][-1] == rows["seq"][-1]
    forming = [v for v, seq in zip(values, rows["seq"], strict=True) if seq // 10 == closed + 1]
    assert wicks["y1"][-1] == pytest.approx(max(forming))
    assert bodies["top"][-1] == pytest.approx(max(forming[0], forming[-1]))

    # the forming candle changes in place as ticks arrive; then a new one is appended
    first_seq, first_count = bodies["seq"][-1], len(bodies["rows"])
    page.wait_for_function(
        f"""([seq]) => {{
          const s = ({RENDERER})("candle_bodies").data_source.data.seq
          return s[s.length - 1] > seq
        }}""",
        arg=[first_seq],
    )
    bodies, *_ = candles()
    if first_seq // 10 == bodies["seq"][-1] // 10:
        assert len(bodies["rows"]) == first_count  # same bar, updated in place
    first_seq = bodies["seq"][-1]
    page.wait_for_function(
        f"""([bar]) => {{
          const s = ({RENDERER})("candle_bodies").data_source.data.seq
          return Math.floor(s[s.length - 1] / 10) > bar
        }}""",
        arg=[first_seq // 10],
        timeout=15_000,
    )
    bodies, *_ = candles()
    assert bodies["seq"][-1] // 10 > first_seq // 10  # a new bar opened

    # SMA on: a line of 20-row averages of the value; off: gone
    page.get_by_role("button", name="SMA").click()
    page.wait_for_function(HAS, arg="indicator_sma")
    drawn, rows = _drawn_and_held(page, "indicator_sma", ["y"], list(quantities))
    sma = drawn["y"]
    n = len(sma)
    values = [sum(rows[s][i] * q for s, q in quantities.items()) for i in range(n)]
    assert sma[-1] == pytest.approx(sum(values[-20:]) / 20)
    assert sma[0] is None or sma[0] != sma[0]  # NaN (a gap) before 20 rows
    # EMA (alpha 2/21 from the first row) and Bollinger bands (the SMA +- 2 population
    # standard deviations of the last 20 rows), worked out here the same way
    page.get_by_role("button", name="EMA").click()
    page.get_by_role("button", name="Bollinger").click()
    page.wait_for_function(HAS, arg="indicator_lower")
    page.wait_for_function(HAS, arg="indicator_ema")
    lines = [["indicator_ema", ["y"]], ["indicator_upper", ["y"]], ["indicator_lower", ["y"]]]
    *drawn, rows = page.evaluate(
        f"([specs, columns]) => [...specs.map(({DRAWN})), ({SOURCE})(columns)]",
        [lines, list(quantities)],
    )
    n = len(drawn[0]["y"])
    values = [sum(rows[s][i] * q for s, q in quantities.items()) for i in range(n)]
    ema = values[0]
    for v in values[1:]:
        ema = 2 / 21 * v + (1 - 2 / 21) * ema
    assert drawn[0]["y"][-1] == pytest.approx(ema)
    last = values[-20:]
    mean = sum(last) / 20
    sd = math.sqrt(sum((v - mean) ** 2 for v in last) / 20)
    assert drawn[1]["y"][-1] == pytest.approx(mean + 2 * sd, abs=1e-3)
    assert drawn[2]["y"][-1] == pytest.approx(mean - 2 * sd, abs=1e-3)
    for name in ("SMA", "EMA", "Bollinger"):
        page.get_by_role("button", name=name).click()
    page.wait_for_function(HAS_NOT, arg="indicator_sma")
    page.wait_for_function(HAS_NOT, arg="indicator_upper")
    page.get_by_role("button", name="Line").click()
    page.wait_for_function(HAS_NOT, arg="candle_bodies")
    assert _drawn(page, "total_value")["visible"] is True


def test_a_shared_link_opens_with_its_chart_options(server, page):
    page.goto(f"{server.url}/portfolio?chart=Candles&indicators=Bollinger&bar=30&prices=price")
    expect(page.locator(TOTAL)).to_have_text(MONEY)
    expect(page.get_by_role("button", name="Candles")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Bollinger")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Price", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.get_by_label("Bar")).to_have_value("30")
    assert _drawn(page, "indicator_upper", "y") is not None


def test_download_csv_saves_the_rows_the_page_holds(server, page):
    _open(server, page)
    page.get_by_role("button", name="Stop", exact=True).click()  # hold the rows still
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_enabled()
    wait_ticks(server, 2)  # an update already in flight lands
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == "finflow-history.csv"
    text = Path(download.value.path()).read_text(encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(text)))
    symbols = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "JPM"]
    assert list(table[0]) == ["time", "seq", *symbols, "portfolio_value"]
    held = page.evaluate(SOURCE, ["time", "seq", *symbols])
    assert [int(r["seq"]) for r in table] == held["seq"]
    assert len(table) == len(held["seq"]) > 5
    for i in (0, -1):
        for symbol in symbols:
            assert float(table[i][symbol]) == held[symbol][i]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", table[i]["time"])
    page.get_by_role("button", name="Start", exact=True).click()


def test_an_alert_fires_a_toast_and_a_log_entry_and_bad_values_add_nothing(server, page):
    _open(server, page)
    page.get_by_role("button", name="Alerts").click()
    card = page.locator(".card", has_text="Active alerts")
    expect(card).to_be_visible()
    add = page.get_by_role("button", name="Add alert")
    message = page.locator(".ff-alert-message")

    add.click()  # no value
    expect(message).to_have_text("Value: enter a number")
    page.get_by_label("Condition").select_option("moves by %")
    page.get_by_label("Value").fill("-1")
    page.get_by_label("Value").press("Enter")
    add.click()
    expect(message).to_have_text("Value: a move must be a positive per cent")
    expect(page.get_by_text("No alerts yet.")).to_be_visible()

    # AAPL trades near 190: "above 1" is true now, so it fires on the next tick
    page.get_by_label("Target").select_option("AAPL")
    page.get_by_label("Condition").select_option("above")
    page.get_by_label("Value").fill("1")
    page.get_by_label("Value").press("Enter")
    add.click()
    expect(message).to_have_text("Added: AAPL above 1.00")
    toast = page.locator(".notyf__toast")
    expect(toast).to_contain_text(re.compile(r"AAPL above 1\.00: now \d{3}\.\d\d"))
    entry = page.locator(".ff-alert-log li")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(re.compile(r"^\d\d:\d\d:\d\dAAPL above 1\.00: now"))
    # five more ticks, all still true, and on the page: no repeat
    seq = wait_ticks(server, 5)
    page.wait_for_function(f"(seq) => ({SOURCE})(['seq']).seq.at(-1) >= seq", arg=seq)
    expect(entry).to_have_count(1)

    # the portfolio's total, as the KPI card shows it
    page.get_by_label("Target").select_option("Portfolio")
    page.get_by_label("Condition").select_option("below")
    page.get_by_label("Value").fill("100000000")
    page.get_by_label("Value").press("Enter")
    add.click()
    expect(entry).to_have_count(2)
    newest = entry.first.inner_text()
    assert "Portfolio below 100,000,000.00: now " in newest
    total = float(newest.rsplit("now ", 1)[1].replace(",", ""))
    kpi = float(page.locator(TOTAL).inner_text().strip("$").replace(",", ""))
    assert total == pytest.approx(kpi, rel=0.02)

    page.get_by_role("button", name="Remove").first.click()
    expect(page.get_by_role("button", name="Remove")).to_have_count(1)
    expect(card).to_contain_text("Portfolio below 100,000,000.00")
