"""The dashboard's and analysts' charts: what they hold, and what building them costs."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, GlyphRenderer, HoverTool, Legend

from finflow_panel.ui.charts import prices_figure, shared_x_range
from finflow_panel.ui.plots import price_paths_figure


def _source(symbols):
    return ColumnDataSource({name: np.zeros(3) for name in ("time", *symbols)})


def _calls_to_build(n: int) -> int:
    """Python function calls made building a price chart of ``n`` symbols: a count of
    the work done, repeatable where a time is not."""
    symbols = tuple(f"S{i}" for i in range(n))
    source, x_range = _source(symbols), shared_x_range()
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        prices_figure(source, x_range, symbols)
    finally:
        sys.setprofile(None)
    return calls


def test_a_price_chart_costs_the_same_per_symbol_however_many_there_are():
    small, medium, large = (_calls_to_build(n) for n in (50, 250, 450))
    # Linear: the next 200 symbols cost what the previous 200 did. Adding lines and
    # legend entries one by one costs more for each symbol than for the one before.
    assert (large - medium) / (medium - small) < 1.05


def test_every_symbol_has_a_line_a_legend_entry_and_the_hover():
    symbols = ("AAPL", "MSFT", "GOOGL")
    fig = prices_figure(_source(symbols), shared_x_range(), symbols)
    lines = [r for r in fig.renderers if isinstance(r, GlyphRenderer)]
    assert [line.glyph.y for line in lines] == list(symbols)
    [legend] = fig.select(type=Legend)
    assert [item.label.value for item in legend.items] == list(symbols)
    assert legend.click_policy == "hide"
    [hover] = fig.select(type=HoverTool)
    assert hover.renderers == lines


def test_analyst_chart_has_one_line_per_column():
    prices = pd.DataFrame(
        {"AAPL": [1.0, 2.0], "MSFT": [3.0, 4.0]},
        index=pd.date_range("2026-01-02", periods=2, name="time"),
    )
    fig = price_paths_figure(prices)
    lines = [r for r in fig.renderers if isinstance(r, GlyphRenderer)]
    assert [line.glyph.y for line in lines] == ["AAPL", "MSFT"]
    np.testing.assert_array_equal(lines[0].data_source.data["MSFT"], [3.0, 4.0])
