"""Bokeh figures over one session's ColumnDataSource."""

from __future__ import annotations

from bokeh.models import (
    ColumnDataSource,
    DataRange1d,
    GlyphRenderer,
    HoverTool,
    Legend,
    LegendItem,
    Line,
)
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

__all__ = [
    "add_symbol_lines",
    "lean_lines",
    "portfolio_figure",
    "prices_figure",
    "share_time_axis",
    "shared_x_range",
]

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


def lean_lines(lines: list) -> None:
    """Let BokehJS derive the lines' non-selected and muted looks (nothing is selected or
    muted on these charts) instead of two more glyph models per line in the document."""
    for line in lines:
        line.nonselection_glyph = "auto"
        line.muted_glyph = "auto"


def share_time_axis(*figures) -> None:
    """One datetime ticker and formatter for the time axes and grids of ``figures``.

    A datetime ticker is a dozen sub-ticker models; the charts share a time range, so
    they can share these too, and the document stays smaller.
    """
    first = figures[0]
    ticker, formatter = first.xaxis[0].ticker, first.xaxis[0].formatter
    for fig in figures[1:]:
        fig.xaxis[0].ticker = ticker
        fig.xaxis[0].formatter = formatter
        fig.xgrid[0].ticker = ticker


def portfolio_figure(source: ColumnDataSource, x_range: DataRange1d):
    """Portfolio total value over time."""
    fig = _figure("Portfolio value", x_range, "Value ($)")
    line = fig.line("time", "total_value", source=source, line_width=2, color="#2563eb")
    lean_lines([line])
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
    add_symbol_lines(fig, source, "time", symbols, time_format="%H:%M:%S")
    fig.legend.label_text_font_size = "11px"
    return fig


def add_symbol_lines(
    fig, source: ColumnDataSource, x: str, symbols, time_format: str
) -> list[GlyphRenderer]:
    """One line per symbol column of ``source``, one hover tool for all, and a legend
    whose entries hide their line when clicked.

    The lines and legend entries are made first and added in one assignment each:
    ``fig.line(..., legend_label=...)`` per symbol revalidates every renderer and
    searches every legend entry added before it, a cost quadratic in the number of
    symbols (1,000 symbols blocked the server for 14 s per session). One hover tool
    rather than one per line keeps the document small.
    """
    lines = [
        GlyphRenderer(
            data_source=source,
            glyph=Line(x=x, y=symbol, line_width=1.6, line_color=Category10_10[i % 10]),
            name=symbol,
        )
        for i, symbol in enumerate(symbols)
    ]
    lean_lines(lines)
    fig.renderers = [*fig.renderers, *lines]
    items = [
        LegendItem(label=symbol, renderers=[line])
        for symbol, line in zip(symbols, lines, strict=True)
    ]
    fig.add_layout(Legend(items=items, click_policy="hide", location="top_left"))
    fig.add_tools(
        HoverTool(
            renderers=lines,
            tooltips=[
                ("symbol", "$name"),
                ("time", f"$x{{{time_format}}}"),
                ("price", "$y{0,0.00}"),
            ],
            formatters={"$x": "datetime"},
        )
    )
    return lines
