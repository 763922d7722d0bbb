"""Bokeh figures over one session's ColumnDataSource."""

from __future__ import annotations

import logging

from bokeh.models import (
    AdaptiveTicker,
    AllLabels,
    BasicTicker,
    CDSView,
    ColumnDataSource,
    CustomJSExpr,
    CustomJSFilter,
    DataRange1d,
    DatetimeAxis,
    DatetimeTicker,
    DatetimeTickFormatter,
    DaysTicker,
    GlyphRenderer,
    Grid,
    HoverTool,
    Legend,
    LegendItem,
    Line,
    LinearAxis,
    MonthsTicker,
    PanTool,
    Plot,
    ResetTool,
    SaveTool,
    Segment,
    Title,
    Toolbar,
    VBar,
    WheelZoomTool,
)
from bokeh.palettes import Category10_10

__all__ = [
    "INDICATORS",
    "add_symbol_lines",
    "candle_renderers",
    "indicator_renderers",
    "chart_source",
    "lean_lines",
    "portfolio_figure",
    "portfolio_value",
    "prices_figure",
    "series_value",
    "set_symbol_lines",
    "shared_x_range",
    "time_ticks",
]

_TIME_FORMAT = "@time{%H:%M:%S}"
_SECOND, _MINUTE, _HOUR = 1000.0, 60_000.0, 3_600_000.0

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


def _figure(title: str, x_range: DataRange1d, y_label: str, time_axis: TimeAxis | None = None):
    """A plot with a time axis below, a value axis left and a pan/zoom/reset/save toolbar.

    Built from Bokeh's models directly rather than ``figure()``, which makes default
    axes, tickers and label policies that these charts then replace: each is a model
    every session builds, serializes and sends.
    """
    ticker, formatter = time_axis or time_ticks()
    labels = AllLabels()  # stateless: one for both axes instead of one each
    y_ticker = BasicTicker()
    fig = Plot(
        title=Title(text=title, text_font_size="14px"),
        x_range=x_range,
        y_range=_y_range(),
        height=320,
        sizing_mode="stretch_width",
        toolbar=Toolbar(
            tools=[
                PanTool(dimensions="width"),
                WheelZoomTool(dimensions="width"),
                ResetTool(),
                SaveTool(),
            ]
        ),  # fmt: skip
        toolbar_location="above",
        below=[DatetimeAxis(ticker=ticker, formatter=formatter, major_label_policy=labels)],
        left=[LinearAxis(ticker=y_ticker, major_label_policy=labels, axis_label=y_label)],
        center=[Grid(dimension=0, ticker=ticker), Grid(dimension=1, ticker=y_ticker)],
    )
    # The browser reports a plot's inner and outer sizes after every render and
    # resize; the server has no use for them, and they are messages to read and apply.
    fig.syncable = False
    return fig


def lean_lines(lines: list) -> None:
    """Let BokehJS derive the lines' non-selected and muted looks (nothing is selected or
    muted on these charts) instead of two more glyph models per line in the document."""
    for line in lines:
        line.nonselection_glyph = "auto"
        line.muted_glyph = "auto"


TimeAxis = tuple[DatetimeTicker, DatetimeTickFormatter]


def time_ticks() -> TimeAxis:
    """A datetime ticker and formatter for time axes, to share between a session's charts.

    Bokeh's default DatetimeTicker is a dozen sub-ticker models, years and every few
    months included; a live chart holds minutes to weeks of ticks, so these seven
    sub-tickers (Bokeh's own, for milliseconds to months) draw the same ticks with fewer
    models for every session to build and pull.
    """
    ticker = DatetimeTicker(
        tickers=[
            AdaptiveTicker(
                mantissas=[1, 2, 5], base=10, min_interval=0, max_interval=500.0,
                num_minor_ticks=0,
            ),
            AdaptiveTicker(
                mantissas=[1, 2, 5, 10, 15, 20, 30], base=60, min_interval=_SECOND,
                max_interval=30 * _MINUTE, num_minor_ticks=0,
            ),
            AdaptiveTicker(
                mantissas=[1, 2, 4, 6, 8, 12], base=24, min_interval=_HOUR,
                max_interval=12 * _HOUR, num_minor_ticks=0,
            ),
            DaysTicker(days=list(range(1, 32))),
            DaysTicker(days=[1, 8, 15, 22]),
            DaysTicker(days=[1, 15]),
            MonthsTicker(months=list(range(12))),
        ]
    )  # fmt: skip
    return ticker, DatetimeTickFormatter()


#: The chosen series at every row, as ``v``: a portfolio's value (or one symbol's
#: price: one holding of quantity 1), worked out in the browser from the price columns
#: the session holds, so sessions showing different portfolios still share one update.
#: Summed holding by holding, in holding order, as ``model.portfolio_values`` sums.
_SERIES_JS = """
const n = this.get_length() ?? 0
const v = new Float64Array(n)
for (let j = 0; j < symbols.length; j++) {
  const prices = this.data[symbols[j]]
  if (prices == null) { continue }
  for (let i = 0; i < n; i++) { v[i] += prices[i] * quantities[j] }
}
"""
_VALUE_CODE = _SERIES_JS + "return v\n"


def portfolio_value(symbols, quantities) -> CustomJSExpr:
    """The expression a value line plots: the sum of ``quantities`` of ``symbols``."""
    return CustomJSExpr(
        args={"symbols": list(symbols), "quantities": [float(q) for q in quantities]},
        code=_VALUE_CODE,
    )


def portfolio_figure(
    source: ColumnDataSource,
    x_range: DataRange1d,
    symbols,
    quantities,
    view: CDSView | None = None,
    time_axis: TimeAxis | None = None,
):
    """Portfolio total value over time (``view``, ``time_axis``: to share with others).

    The value is computed in the browser (`portfolio_value`).
    """
    fig = _figure("Portfolio value", x_range, "Value ($)", time_axis)
    line = GlyphRenderer(
        data_source=source,
        view=view or CDSView(),
        glyph=Line(
            x="time",
            y={"expr": portfolio_value(symbols, quantities)},
            line_width=2,
            line_color="#2563eb",
        ),
        name="total_value",
    )
    lean_lines([line])
    fig.renderers = [line]
    fig.add_tools(
        HoverTool(
            renderers=[line],
            tooltips=[("time", _TIME_FORMAT), ("value", "$y{$0,0.00}"), ("tick", "@seq")],
            formatters={"@time": "datetime"},
            mode="vline",
        )
    )
    return fig


PRICE_LABEL, PERCENT_LABEL = "Price ($)", "Change since open (%)"


def prices_figure(
    source: ColumnDataSource,
    x_range: DataRange1d,
    symbols: tuple[str, ...],
    view: CDSView | None = None,
    time_axis: TimeAxis | None = None,
    reference=None,
):
    """One line per symbol; clicking a legend entry hides its line.

    With ``reference`` (each symbol's price at the day's open) the lines show the %
    change since then, worked out in the browser from the raw price columns.
    """
    fig = _figure("Prices", x_range, PERCENT_LABEL if reference else PRICE_LABEL, time_axis)
    add_symbol_lines(
        fig, source, "time", symbols, time_format="%H:%M:%S", view=view, reference=reference
    )
    fig.legend.label_text_font_size = "11px"
    return fig


#: A symbol's % change from its reference price at every row, in the browser.
_PERCENT_CODE = "return (this.data[column] ?? []).map((p) => (p / reference - 1) * 100)"


def _percent(symbol: str, reference: float) -> dict:
    return {
        "expr": CustomJSExpr(args={"column": symbol, "reference": reference}, code=_PERCENT_CODE)
    }


def add_symbol_lines(
    fig,
    source: ColumnDataSource,
    x: str,
    symbols,
    time_format: str,
    view: CDSView | None = None,
    reference=None,
) -> list[GlyphRenderer]:
    """One line per symbol column of ``source``, one hover tool for all, and a legend
    whose entries hide their line when clicked.

    The lines and legend entries are made first and added in one assignment each:
    ``fig.line(..., legend_label=...)`` per symbol revalidates every renderer and
    searches every legend entry added before it, a cost quadratic in the number of
    symbols (1,000 symbols blocked the server for 14 s per session). One hover tool, and
    one view of the source (``view``, or a new one) for all lines rather than one each,
    keep the document small: each is models that every session builds and pulls.
    """
    view = view or CDSView()
    fig.add_layout(Legend(click_policy="hide", location="top_left"))
    hover = HoverTool(
        tooltips=[("symbol", "$name"), ("time", f"$x{{{time_format}}}"), ("price", "$y{0,0.00}")],
        formatters={"$x": "datetime"},
    )
    fig.add_tools(hover)
    return set_symbol_lines(fig, source, x, symbols, view, reference)


def set_symbol_lines(
    fig, source, x: str, symbols, view: CDSView | None = None, reference=None
) -> list:
    """Make ``fig``'s symbol lines (and legend entries) those of ``symbols``: the lines
    of an `add_symbol_lines` chart, switched to other holdings in place. With
    ``reference`` (one price per symbol) they show the % change from it."""
    old = fig.renderers  # the chart's only renderers are its symbol lines
    view = view or (old[0].view if old else CDSView())
    ys = (
        list(symbols)
        if reference is None
        else [_percent(*pair) for pair in zip(symbols, reference, strict=True)]
    )
    lines = [
        GlyphRenderer(
            data_source=source,
            view=view,
            glyph=Line(x=x, y=y, line_width=1.6, line_color=Category10_10[i % 10]),
            name=symbol,
        )
        for i, (symbol, y) in enumerate(zip(symbols, ys, strict=True))
    ]
    lean_lines(lines)
    fig.renderers = lines
    fig.legend[0].items = [
        LegendItem(label=symbol, renderers=[line])
        for symbol, line in zip(symbols, lines, strict=True)
    ]
    for hover in fig.select(type=HoverTool):
        hover.renderers = lines
        hover.tooltips[-1] = (
            ("price", "$y{0,0.00}") if reference is None else ("change", "$y{+0.00}%")
        )
    fig.left[0].axis_label = PRICE_LABEL if reference is None else PERCENT_LABEL
    return lines


# -- candles and indicators -------------------------------------------------------------
#
# Worked out in the browser from the rows the session already holds, like the value line:
# the server streams the same price rows whatever a session shows.

#: OHLC bars of ``bar`` ticks, bars aligned on sequence numbers (tick k is in bar
#: floor(k / bar)), so every session draws the same bars; each row holds its bar's
#: values so far, and the view shows the last row of each bar: a forming bar changes
#: in place as its ticks arrive. ``part`` picks the output.
_CANDLE_CODE = (
    _SERIES_JS
    + """
const seq = this.data.seq, time = this.data.time
const out = part === "color" ? new Array(n) : new Float64Array(n)
let open = 0, high = 0, low = 0, first = 0
for (let i = 0; i < n; i++) {
  const b = Math.floor(seq[i] / bar)
  if (i === 0 || Math.floor(seq[i - 1] / bar) !== b) {
    open = high = low = v[i]
    first = time[i] - (seq[i] - b * bar) * tick
  }
  high = Math.max(high, v[i]); low = Math.min(low, v[i])
  const close = v[i]
  switch (part) {
    case "x": out[i] = first + (bar - 1) * tick / 2; break
    case "high": out[i] = high; break
    case "low": out[i] = low; break
    case "top": out[i] = Math.max(open, close); break
    case "bottom": out[i] = Math.min(open, close); break
    case "color": out[i] = close >= open ? "#16a34a" : "#dc2626"; break
  }
}
return out
"""
)

#: The last row of each bar: the rows candles are drawn from.
_BAR_ENDS_CODE = """
const seq = source.data.seq ?? []
const out = []
for (let i = 0; i < seq.length; i++) {
  if (i === seq.length - 1 || Math.floor(seq[i + 1] / bar) !== Math.floor(seq[i] / bar)) {
    out.push(i)
  }
}
return out
"""

#: A moving average (simple or exponential) or a Bollinger band (the simple average
#: plus or minus two standard deviations) of the last ``window`` rows, NaN (a gap)
#: until there are that many.
_INDICATOR_CODE = (
    _SERIES_JS
    + """
const out = new Float64Array(n).fill(NaN)
if (kind === "ema") {
  const alpha = 2 / (window + 1)
  let ema = NaN
  for (let i = 0; i < n; i++) {
    ema = i === 0 ? v[0] : alpha * v[i] + (1 - alpha) * ema
    if (i >= window - 1) { out[i] = ema }
  }
  return out
}
let sum = 0, squares = 0
for (let i = 0; i < n; i++) {
  sum += v[i]; squares += v[i] * v[i]
  if (i >= window) { sum -= v[i - window]; squares -= v[i - window] * v[i - window] }
  if (i < window - 1) { continue }
  const mean = sum / window
  const sd = Math.sqrt(Math.max(squares / window - mean * mean, 0))
  out[i] = kind === "upper" ? mean + 2 * sd : (kind === "lower" ? mean - 2 * sd : mean)
}
return out
"""
)

#: Indicator names as the dashboard offers them, and the lines each draws.
INDICATORS = {"SMA": ("sma",), "EMA": ("ema",), "Bollinger": ("upper", "lower")}
_INDICATOR_STYLE = {
    "sma": ("#f59e0b", "solid"),
    "ema": ("#7c3aed", "solid"),
    "upper": ("#64748b", "dashed"),
    "lower": ("#64748b", "dashed"),
}


def series_value(symbols, quantities) -> dict:
    """Args naming a series: a portfolio's holdings, or ``[symbol], [1.0]``."""
    return {"symbols": list(symbols), "quantities": [float(q) for q in quantities]}


def candle_renderers(source, series: dict, bar: int, tick_ms: float) -> list[GlyphRenderer]:
    """Wicks (`Segment`) and bodies (`VBar`) of ``bar``-tick candles of ``series``,
    green when a bar closed at or above its open, red below."""

    def part(name: str) -> dict:
        args = {**series, "bar": int(bar), "tick": float(tick_ms), "part": name}
        return {"expr": CustomJSExpr(args=args, code=_CANDLE_CODE)}

    view = CDSView(filter=CustomJSFilter(args={"bar": int(bar)}, code=_BAR_ENDS_CODE))
    color = part("color")
    x = part("x")
    wicks = GlyphRenderer(
        data_source=source,
        view=view,
        glyph=Segment(x0=x, x1=x, y0=part("low"), y1=part("high"), line_color=color),
        name="candle_wicks",
    )
    bodies = GlyphRenderer(
        data_source=source,
        view=view,
        glyph=VBar(
            x=x,
            width=0.7 * bar * tick_ms,
            top=part("top"),
            bottom=part("bottom"),
            fill_color=color,
            line_color=color,
        ),
        name="candle_bodies",
    )
    lean_lines([wicks, bodies])
    return [wicks, bodies]


def indicator_renderers(source, view, series: dict, names, window: int) -> list[GlyphRenderer]:
    """Lines of the chosen ``names`` of `INDICATORS` over ``window`` rows of ``series``."""
    lines = []
    for name in names:
        for kind in INDICATORS[name]:
            color, dash = _INDICATOR_STYLE[kind]
            y = CustomJSExpr(
                args={**series, "kind": kind, "window": int(window)}, code=_INDICATOR_CODE
            )
            lines.append(
                GlyphRenderer(
                    data_source=source,
                    view=view,
                    glyph=Line(
                        x="time", y={"expr": y}, line_color=color, line_dash=dash, line_width=1.4
                    ),
                    name=f"indicator_{kind}",
                )
            )
    lean_lines(lines)
    return lines
