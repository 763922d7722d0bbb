"""Bokeh figures and the holdings table for one session's ColumnDataSource."""

from __future__ import annotations

import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, DataRange1d, HoverTool, NumberFormatter
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

__all__ = ["holdings_table", "portfolio_figure", "prices_figure", "shared_x_range"]

_TIME_FORMAT = "@time{%H:%M:%S}"


def shared_x_range() -> DataRange1d:
    """The time range both charts share.

    ``syncable=False``: the browser recomputes a data range after every redraw, and
    without this each visible tab would send the new start/end back to the server after
    every update - work (and traffic) for values the server never needs.
    """
    x_range = DataRange1d(range_padding=0.0)
    x_range.syncable = False
    return x_range


def _y_range() -> DataRange1d:
    y_range = DataRange1d(range_padding=0.08, only_visible=True)
    y_range.syncable = False
    return y_range


def _figure(title: str, x_range: DataRange1d, y_label: str):
    fig = figure(
        title=title,
        x_axis_type="datetime",
        x_range=x_range,
        y_range=_y_range(),
        height=320,
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,reset,save",
        toolbar_location="above",
    )
    fig.yaxis.axis_label = y_label
    fig.title.text_font_size = "14px"
    return fig


def portfolio_figure(source: ColumnDataSource, x_range: DataRange1d):
    """Portfolio total value over time."""
    fig = _figure("Portfolio value", x_range, "Value ($)")
    line = fig.line("time", "total_value", source=source, line_width=2, color="#2563eb")
    fig.add_tools(
        HoverTool(
            renderers=[line],
            tooltips=[("time", _TIME_FORMAT), ("value", "@total_value{$0,0.00}"), ("tick", "@seq")],
            formatters={"@time": "datetime"},
            mode="vline",
        )
    )
    return fig


def prices_figure(source: ColumnDataSource, x_range: DataRange1d, symbols: tuple[str, ...]):
    """One line per symbol; clicking a legend entry hides its line."""
    fig = _figure("Prices", x_range, "Price ($)")
    for i, symbol in enumerate(symbols):
        line = fig.line(
            "time",
            symbol,
            source=source,
            line_width=1.6,
            color=Category10_10[i % 10],
            legend_label=symbol,
        )
        fig.add_tools(
            HoverTool(
                renderers=[line],
                tooltips=[
                    ("symbol", symbol),
                    ("time", _TIME_FORMAT),
                    ("price", f"@{{{symbol}}}{{0,0.00}}"),
                ],
                formatters={"@time": "datetime"},
            )
        )
    fig.legend.click_policy = "hide"
    fig.legend.location = "top_left"
    fig.legend.label_text_font_size = "11px"
    return fig


def _signed() -> NumberFormatter:
    # Coloured by the table's hidden ``tone`` column; a new model per table, as a Bokeh
    # model may belong to one Document only.
    return NumberFormatter(format="+0,0.00", text_color="tone")


def holdings_table(rows: pd.DataFrame) -> pn.widgets.Tabulator:
    """Symbol, name, price, change, change %, quantity, value and weight, patched in place.

    ``rows`` also holds a ``tone`` column (a CSS colour per row) for the change columns.
    A Tabulator rather than Bokeh's DataTable: on Bokeh 3.9.2 a DataTable next to a
    collapsed Card fails to render ("Cannot read properties of undefined (reading
    'resizeCanvas')").
    """
    money = NumberFormatter(format="0,0.00")
    return pn.widgets.Tabulator(
        rows,
        show_index=False,
        disabled=True,
        selectable=False,
        hidden_columns=["tone"],
        titles={
            "symbol": "Symbol",
            "name": "Name",
            "price": "Price",
            "change": "Change",
            "change_percent": "Change %",
            "quantity": "Quantity",
            "value": "Value",
            "weight": "Weight %",
        },
        formatters={
            "price": money,
            "change": _signed(),
            "change_percent": _signed(),
            "quantity": NumberFormatter(format="0,0.[00]"),
            "value": money,
            "weight": NumberFormatter(format="0.0"),
        },
        layout="fit_data_stretch",
        sizing_mode="stretch_width",
    )
