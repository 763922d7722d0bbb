"""Bokeh figures over one session's ColumnDataSource."""

from __future__ import annotations

import logging

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
    "chart_source",
    "lean_lines",
    "portfolio_figure",
    "prices_figure",
    "share_time_axis",
    "shared_x_range",
]

_TIME_FORMAT = "@time{%H:%M:%S}"

log = logging.getLogger(__name__)


class _ServerOwnedSource(ColumnDataSource):
    """A ColumnDataSource whose data only the server changes.

    Bokeh applies a client's ``ColumnsPatched``, ``ColumnsStreamed`` or ``data`` change
    to the server-side source; the fan-out shares column arrays between the sessions
    holding the same rows, so one client's edit would reach other sessions' documents
    (and a client's own rows would seed the updates shared with them). Changes that
    carry a setter (a client's session or comm) are refused here, with one log line per
    source; the browser's view is BokehJS's ``ColumnDataSource`` as usual. The leading
    underscore keeps Bokeh from registering the class as a second model of that name.
    """

    __view_model__ = "ColumnDataSource"
    __view_module__ = "bokeh.models.sources"
    __qualified_model__ = "ColumnDataSource"

    def _refused(self, what: str, setter) -> None:
        if not getattr(self, "_refusal_logged", False):
            self._refusal_logged = True
            log.warning("refused a client's %s of chart source %s (%r)", what, self.id, setter)

    def set_from_json(self, name, value, *, setter=None) -> None:
        if setter is not None and name == "data":
            return self._refused("change of data", setter)
        super().set_from_json(name, value, setter=setter)

    def _stream(self, new_data, rollover=None, setter=None) -> None:
        if setter is not None:
            return self._refused("stream", setter)
        super()._stream(new_data, rollover, setter)

    def patch(self, patches, setter=None) -> None:
        if setter is not None:
            return self._refused("patch", setter)
        super().patch(patches, setter)


def chart_source(data: dict) -> ColumnDataSource:
    """The ColumnDataSource of a session's charts: the browser may read it, not edit it."""
    return _ServerOwnedSource(data=data)


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
