"""The live portfolio dashboard: one per browser session (or notebook output)."""

from __future__ import annotations

import html
import logging
import time
import weakref
from functools import partial

import numpy as np
import panel as pn
import param
from bokeh.models import CDSView

from ..feed import PORTFOLIO, SharedFeed, TickBatch
from ..model import Portfolio
from .alerts import AlertsCard
from .charts import (
    INDICATORS,
    candle_renderers,
    chart_source,
    indicator_renderers,
    portfolio_figure,
    portfolio_value,
    prices_figure,
    series_value,
    set_symbol_lines,
    shared_x_range,
    time_ticks,
)
from .components import ConnectionStatus, Diagnostics, HoldingsTable, KpiCards
from .fanout import BokehWire, FanOut, SharedUpdate

__all__ = ["MAX_HOLDINGS", "LiveDashboard", "check_portfolio"]

log = logging.getLogger(__name__)

#: The chart options the browser may set (the toolbar `KpiCards` draws).
_CHART_OPTIONS = ("series", "chart", "bar_ticks", "indicators", "window", "price_view")
#: Column names the chart source always has; monitoring tools read ``time`` and ``seq``.
RESERVED_COLUMNS = ("time", "seq", "total_value")
#: Holdings one dashboard shows (a line, a legend entry and a table row each); the
#: market itself may quote many more symbols.
MAX_HOLDINGS = 50
# A session whose websocket still has this much unsent data skips a turn: it gets one
# bigger batch later instead of an ever-growing queue in server memory.
_MAX_WRITE_BACKLOG = 4 * 1024 * 1024
# Batches up to this many rows are sent as JSON lists, bigger ones as binary arrays.
_JSON_ROWS = 16
# Server-side figures in an open diagnostics panel are refreshed at most this often.
_SERVER_STATS_PERIOD = 5.0
#: Ticks ahead whose own dates (a replay's) a page is sent at a time: one table per
#: this many ticks, through Bokeh's route, instead of a date in every shared update.
_DATES_AHEAD = 256
# The page's header bar: the dashboard is the whole page, with no template around it.
_HEADER_STYLES = {"background": "#1e3a8a", "border-radius": "10px", "padding": "4px 6px"}
#: On a narrow screen the header's items wrap and the two charts stack at full width.
_WRAP_CSS = ":host { flex-wrap: wrap; }"
_STACK_CSS = (
    "@media (max-width: 700px) { :host { flex-direction: column; }"
    " :host > * { flex: 0 0 auto !important; width: 100% !important; } }"
)
#: Start, Stop and the interval: touch targets of 44 px on a phone.
_TOUCH_CSS = "@media (pointer: coarse) { .bk-btn, .bk-input { min-height: 44px; } }"
_HEADING_CSS = """
:host { align-self: center; }
.ff-title { font: 650 22px system-ui, sans-serif; color: #fff; margin-right: 14px; }
.ff-book { font: 600 15px system-ui, sans-serif; color: #c7d2fe; }
@media (max-width: 600px) { .ff-title { font-size: 18px; } .ff-book { display: block; } }
"""


def check_portfolio(portfolio: Portfolio, symbols: tuple[str, ...] | None = None) -> None:
    """Raise ValueError (one line) unless a dashboard can show ``portfolio`` on a market
    quoting ``symbols`` (default: any)."""
    if len(portfolio) > MAX_HOLDINGS:
        raise ValueError(
            f"{len(portfolio)} holdings is more than a dashboard shows (at most {MAX_HOLDINGS})"
        )
    if symbols is not None:
        unknown = [s for s in portfolio.symbols if s not in symbols]
        if unknown:
            raise ValueError(
                f"unknown symbol(s) {', '.join(unknown)}: the feed quotes only {', '.join(symbols)}"
            )
    clash = [s for s in portfolio.symbols if s in RESERVED_COLUMNS]
    if clash:
        raise ValueError(
            f"symbol(s) {', '.join(clash)} clash with the chart's own columns "
            f"({', '.join(RESERVED_COLUMNS)})"
        )


#: The newest initial rows of each feed, per rollover: sessions opened on the same tick
#: share them. Weak on the feed, so a notebook's dropped feed takes its rows with it.
_INITIAL_ROWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _release(unsubscribe, alerts_card, session_context) -> None:
    # Runs after Bokeh has destroyed the session (module globals of an app script may
    # already be cleared), so everything it needs is bound here.
    unsubscribe()
    alerts_card.close()


class LiveDashboard(pn.viewable.Viewer):
    """A live view of a portfolio on a ticking market.

    Each dashboard owns its Bokeh models (a Bokeh model belongs to one Document), and
    subscribes to a `SharedFeed` shared with every other session. On a tick that is due
    under ``interval`` it streams *all* ticks since its last update in one
    ``ColumnDataSource.stream`` (with rollover), inside one ``pn.io.hold``: one PATCH-DOC
    message per update. The KPI cards, holdings table and diagnostics are computed in
    the browser from the streamed rows, so they cost the server nothing per update.

    Parameters
    ----------
    portfolio : Portfolio
        Holdings to value (default: the sample portfolio).
    feed : SharedFeed
        The market (default: a private feed on the portfolio's own random walk).
    """

    portfolio = param.ClassSelector(class_=Portfolio, doc="The holdings shown.")
    feed = param.ClassSelector(class_=SharedFeed, doc="The market this view follows.")
    interval = param.Number(
        default=5.0,
        bounds=(0.1, 60.0),
        doc="Seconds between updates sent to this view (every tick is still delivered).",
    )
    running = param.Boolean(default=True, doc="Whether this view receives live updates.")
    rollover = param.Integer(
        default=None, allow_None=True, bounds=(1, None), doc="Rows kept (default feed.history)."
    )
    title = param.String(default="FinFlow \u00b7 live portfolio", doc="Heading.")
    price_view = param.Selector(
        default="% change",
        objects=["% change", "Price"],
        doc="Prices chart: each symbol's % change since the day's open, or its price.",
    )
    series = param.String(
        default=PORTFOLIO, doc="What the left chart shows: Portfolio (its value) or a held symbol."
    )
    chart = param.Selector(default="Line", objects=["Line", "Candles"], doc="Left chart's style.")
    bar_ticks = param.Selector(default=10, objects=[10, 30, 60], doc="Ticks per candle.")
    indicators = param.ListSelector(
        default=[], objects=list(INDICATORS), doc="Indicators drawn on the left chart."
    )
    window = param.Integer(default=20, bounds=(2, 500), doc="Rows the indicators average over.")

    #: Every dashboard still in memory, weakly held: a closed session's must go.
    instances: weakref.WeakSet = weakref.WeakSet()

    def __init__(self, **params) -> None:
        super().__init__(**params)
        LiveDashboard.instances.add(self)
        if self.portfolio is None:
            self.portfolio = Portfolio.sample()
        if self.feed is None:
            self.feed = SharedFeed(self.portfolio.random_walk(), tick=1.0)
        symbols = self.portfolio.symbols
        check_portfolio(self.portfolio, self.feed.symbols)
        if self.series not in self._series_options():
            raise ValueError(f"series {self.series!r}: must be Portfolio or a held symbol")
        if self.rollover is None:
            self.rollover = self.feed.history
        self._columns = np.array([self.feed.symbols.index(s) for s in symbols])
        # The source holds every price the market quotes, whatever this view holds:
        # dashboards holding the same rows receive identical updates, whatever their
        # portfolios (each values its own in the browser).
        self._layout_key = (self.feed, self.rollover)

        self._doc = None
        self._server = False
        self._ready = False
        self._unsubscribe = None
        self._pending = False
        self._next_due = 0.0
        self._last_seq = -1
        self._stats_sent_at = 0.0
        self.stats = {
            "ticks_received": 0,
            "messages_sent": 0,
            "rows_streamed": 0,
            "ticks_missed": 0,
            "latency_ms": float("nan"),
        }

        self.source = chart_source(self._initial_columns())
        self._last_seq = self.feed.last_seq
        self._open_version = self.feed.open_version
        view = {"source_id": self.source.id, **self._holdings_view()}
        self._kpis = KpiCards(**view, sizing_mode="stretch_width", margin=(5, 10))
        self._dates_until = -1  # the first tick past the page's table of dates
        self._send_dates(self._last_seq)
        self.table = HoldingsTable(
            **view,
            names=list(self.portfolio.names),
            cost_basis=self._cost_basis(),
            sizing_mode="stretch_width",
            margin=(5, 10),
        )
        self._diagnostics = Diagnostics(**view, sizing_mode="stretch_width", margin=(10, 10))
        self._diagnostics.param.watch(self._on_diagnostics_open, "open")
        self._views = (self._kpis, self.table, self._diagnostics)
        self.alerts_card = AlertsCard(self)
        self._status = ConnectionStatus(
            margin=(12, 10),
            feed_stalled=bool(getattr(self.feed, "stalled", False)),
            feed_finished=self.feed.finished,
        )
        self._layout = self._build_layout()
        self._shown = self.portfolio

    # -- layout ---------------------------------------------------------------------------

    def _build_layout(self) -> pn.viewable.Viewable:
        self._chart_controls()
        x_range = shared_x_range()
        # Every line shows all rows of the one source: one view of it serves them all.
        # and one ticker for both time axes (they share a range).
        view, ticks = CDSView(), time_ticks()
        symbols = self.portfolio.symbols
        value_fig = portfolio_figure(
            self.source, x_range, symbols, self.portfolio.quantities, view, ticks
        )
        price_fig = prices_figure(
            self.source, x_range, symbols, view, ticks, reference=self._percent_reference()
        )
        self._figures = (value_fig, price_fig)
        self._view = view
        self._value_line = value_fig.renderers[0]
        if (self.series, self.chart, self.indicators) != (PORTFOLIO, "Line", []):
            self._draw_left()  # options given when made (a notebook, a shared link)
        self._bokeh_panes = [
            pn.pane.Bokeh(value_fig, sizing_mode="stretch_width"),
            pn.pane.Bokeh(price_fig, sizing_mode="stretch_width"),
        ]
        touch = [_TOUCH_CSS]
        start = pn.widgets.Button(label="Start", color="success", width=90, stylesheets=touch)
        stop = pn.widgets.Button(label="Stop", color="danger", width=90, stylesheets=touch)
        start.on_click(lambda event: setattr(self, "running", True))
        stop.on_click(lambda event: setattr(self, "running", False))
        start.disabled, stop.disabled = self.running, not self.running
        self._buttons = (start, stop)
        # Not linked with from_param: a value out of bounds from a client would raise
        # inside Panel's event handling and log a traceback; here it is one line.
        low, high = self.param.interval.bounds
        interval = pn.widgets.FloatInput(
            label="Update interval (s)",
            value=self.interval,
            start=low,
            end=high,
            step=0.5,
            width=150,
            stylesheets=[".bk-input-group > label { color: #e0e7ff; }", _TOUCH_CSS],
        )
        interval.param.watch(self._on_interval_input, "value")
        self._interval_input = interval
        # One HTML pane for the heading (not Markdown panes and a spacer): every Panel
        # object is Bokeh models and stylesheets that each session builds and pulls.
        self._heading = heading = pn.pane.HTML(
            self._heading_html(), sizing_mode="stretch_width", stylesheets=[_HEADING_CSS]
        )
        self._header = header = pn.Row(
            heading,
            start,
            stop,
            interval,
            self._status,
            sizing_mode="stretch_width",
            styles=_HEADER_STYLES,
            stylesheets=[_WRAP_CSS],
        )
        return pn.Column(
            header,
            self._kpis,
            pn.Row(*self._bokeh_panes, sizing_mode="stretch_width", stylesheets=[_STACK_CSS]),
            self.table,
            self._diagnostics,
            sizing_mode="stretch_width",
        )

    def _chart_controls(self) -> None:
        """The charts' options (series, Line / Candles, bar length, indicators and their
        window for the left chart; % change / Price for the right), the Alerts button and
        the CSV download: a toolbar the KPI cards' view draws below the cards, checked
        here as each option arrives."""
        controls = self._kpis
        controls.param.update(
            series=self.series,
            chart=self.chart,
            bar_ticks=self.bar_ticks,
            bar_choices=list(self.param.bar_ticks.objects),
            indicators=list(self.indicators),
            indicator_choices=list(INDICATORS),
            window=self.window,
            price_view=self.price_view,
        )
        controls.param.watch(self._on_chart_input, list(_CHART_OPTIONS))
        controls.param.watch(self._on_alerts_open, "alerts_open")
        self._controls = controls

    def _series_options(self) -> list[str]:
        return [PORTFOLIO, *self.portfolio.symbols]

    def _on_chart_input(self, event) -> None:
        """A chart option from the browser. One this view refuses (a client's own
        edit: out of range, unknown) gets one log line and the controls show the
        current option again."""
        value = event.new
        try:
            if event.name == "series" and value not in self._series_options():
                raise ValueError(f"{value!r} is not held")
            if event.name == "indicators" and len(set(value)) != len(value):
                raise ValueError("repeated indicator")
            setattr(self, event.name, value)
        except (ValueError, TypeError) as error:
            log.warning("refused chart option %s=%r from a browser: %s", event.name, value, error)
            setattr(self._controls, event.name, getattr(self, event.name))

    def _on_alerts_open(self, event) -> None:
        self.show_alerts(event.new)

    def show_alerts(self, show: bool = True) -> None:
        """Show (or hide) the Alerts card below the holdings; its alerts stay either way."""
        card = self.alerts_card.build()
        items = list(self._layout)
        shown = any(item is card for item in items)
        with pn.io.hold(self._doc if self._server else None):
            if show and not shown:
                after = next(i for i, item in enumerate(items) if item is self.table)
                self._layout.insert(after + 1, card)
            elif not show and shown:
                self._layout.remove(card)
            self._controls.alerts_open = show

    def _sync_controls(self, name: str) -> None:
        value = getattr(self, name)
        if getattr(self._controls, name) != value:
            setattr(self._controls, name, list(value) if name == "indicators" else value)

    @param.depends("series", "chart", "bar_ticks", "indicators", "window", watch=True)
    def _on_chart_options(self) -> None:
        if self.series not in self._series_options():
            wrong = self.series
            with param.discard_events(self):
                self.series = PORTFOLIO
            raise ValueError(f"series {wrong!r}: must be Portfolio or a held symbol")
        for name in _CHART_OPTIONS:
            self._sync_controls(name)
        self._redraw(self._draw_left)

    @param.depends("price_view", watch=True)
    def _on_price_view(self) -> None:
        self._sync_controls("price_view")
        self._redraw(self._draw_prices)

    def _percent_reference(self) -> list | None:
        return self._reference().tolist() if self.price_view == "% change" else None

    def _series_args(self) -> dict:
        if self.series == PORTFOLIO:
            return series_value(self.portfolio.symbols, self.portfolio.quantities)
        return series_value([self.series], [1.0])

    def _redraw(self, draw) -> None:
        """``draw()`` the charts' models in one message, and push it to a notebook."""
        with pn.io.hold(self._doc if self._server else None):
            draw()
        self._push()

    def _draw_left(self) -> None:
        """The left chart's renderers for the current options: the series' line or its
        candles, and the chosen indicators (made when first asked for: a session that
        never uses them never builds them)."""
        value_fig = self._figures[0]
        args = self._series_args()
        line = self._value_line
        line.glyph.y = {"expr": portfolio_value(args["symbols"], args["quantities"])}
        line.visible = self.chart == "Line"
        renderers = [line]
        if self.chart == "Candles":
            tick_ms = self.feed.tick * 1000.0
            renderers += candle_renderers(self.source, args, self.bar_ticks, tick_ms)
        renderers += indicator_renderers(
            self.source, self._view, args, self.indicators, self.window
        )
        value_fig.renderers = renderers
        what = "Portfolio value" if self.series == PORTFOLIO else f"{self.series} price"
        value_fig.title.text = what + (" \u00b7 candles" if self.chart == "Candles" else "")

    def _draw_prices(self) -> None:
        """The price chart's lines: % change since the open, or prices."""
        set_symbol_lines(
            self._figures[1], self.source, "time", self.portfolio.symbols,
            reference=self._percent_reference(),
        )  # fmt: skip

    def _push(self) -> None:
        if not self._server:
            pn.io.push_notebook(*self._bokeh_panes)

    def personalize(self, header=(), sections=()) -> None:
        """Add a signed-in user's controls: ``header`` items after the title,
        ``sections`` below the KPI cards."""
        for i, item in enumerate(header, start=1):
            self._header.insert(i, item)
        for i, section in enumerate(sections, start=2):
            self._layout.insert(i, section)

    def _heading_html(self) -> str:
        return (
            f'<span class="ff-title">{html.escape(self.title)}</span>'
            f'<span class="ff-book">{html.escape(self.portfolio.name)}</span>'
        )

    def _holdings_view(self) -> dict:
        return {
            "symbols": list(self.portfolio.symbols),
            "quantities": self.portfolio.quantities.tolist(),
            "reference": self._reference().tolist(),
        }

    def _cost_basis(self) -> list:
        return [h.cost_basis for h in self.portfolio.holdings]

    @param.depends("portfolio", watch=True)
    def _on_portfolio(self) -> None:
        """Show other holdings on the same market: the views, lines and value line
        change; the rows (every symbol's prices) and the updates stay as they were.
        Holdings the market cannot show are refused (ValueError) and the view stays."""
        if getattr(self, "_layout", None) is None:  # set while being built
            return
        try:
            check_portfolio(self.portfolio, self.feed.symbols)
        except ValueError:
            with param.discard_events(self):
                self.portfolio = self._shown
            raise
        self._shown = self.portfolio
        symbols = self.portfolio.symbols
        self._columns = np.array([self.feed.symbols.index(s) for s in symbols])
        with pn.io.hold(self._doc if self._server else None):
            holdings = self._holdings_view()
            for view in self._views:
                view.param.update(holdings)
            self.table.param.update(names=list(self.portfolio.names), cost_basis=self._cost_basis())
            if self.series not in self._series_options():  # no longer held
                with param.discard_events(self):
                    self.series = PORTFOLIO
                self._sync_controls("series")
            self._draw_left()
            self._draw_prices()
            self._heading.object = self._heading_html()
        self.alerts_card.portfolio_changed()
        self._push()

    def __panel__(self) -> pn.viewable.Viewable:
        self._attach(pn.state.curdoc)
        return self._layout

    # -- subscription ---------------------------------------------------------------------

    def _attach(self, doc) -> None:
        """Follow the feed: in a server session (``doc`` has a session context) or, with
        no session, in a notebook, where updates reach the page through comms."""
        if self._unsubscribe is not None:
            return
        self._doc = doc
        self._server = getattr(doc, "session_context", None) is not None
        unsubscribe = self.feed.subscribe(self)
        self._unsubscribe = unsubscribe
        if self._server:
            doc.on_session_destroyed(partial(_release, unsubscribe, self.alerts_card))
            # Panel sends a session's changes only once its page reports it has rendered
            # (document_ready); until then the document is pulled whole on connect.
            pn.state.onload(self._on_ready)
        else:
            # In a notebook, changes pushed before the output is on the page are lost,
            # so streaming starts when the browser says the cards have rendered.
            self._kpis.param.watch(self._on_ready, "rendered")

    def _on_ready(self, *_events) -> None:
        self._ready = True
        self._next_due = 0.0
        if self._server and self.running and not self._pending:
            # Ticks made while the page loaded go out now, not at the next tick: the
            # first live update reaches a new page up to a tick sooner.
            if self.feed.last_seq > self._last_seq:
                self._pending = True
                FanOut.current().enqueue(self)

    def on_feed_state(self, feed) -> None:
        """The market stalled or came back (a `RedisFeed`), or ended (a replay's last
        row): say so on the page."""
        state = (bool(getattr(feed, "stalled", False)), feed.finished)
        if self._server:
            # Called from the feed's task, outside this session's document lock.
            self._doc.add_next_tick_callback(partial(self._show_feed_state, *state))
        else:
            self._show_feed_state(*state)

    def _show_feed_state(self, stalled: bool, finished: bool) -> None:
        with pn.io.hold(self._doc if self._server else None):
            self._status.param.update(feed_stalled=stalled, feed_finished=finished)

    def _dates_due(self) -> bool:
        return self._dates_until >= 0 and self.feed.last_seq >= self._dates_until

    def _send_dates(self, first: int) -> None:
        """Send the page the source's own dates (a replay's) of the ticks from ``first``."""
        first = max(first, 0)
        dates = self.feed.labels(first, _DATES_AHEAD)
        if dates is None:
            return
        self._kpis.market_dates = {"seq": first, "dates": dates}
        self._dates_until = first + _DATES_AHEAD

    def close(self) -> None:
        """Stop following the feed and drop this view's alerts (sessions do this by
        themselves when they end)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.alerts_card.close()

    def on_tick(self, feed: SharedFeed) -> None:
        """Called by the feed after each tick, on its event loop, outside any document lock."""
        self.stats["ticks_received"] += 1
        if not (self.running and self._ready) or self._pending:
            return
        # Due by the ticks' own clock: a flush that ran late in a busy loop does not
        # push the next one back (which would skip a tick and double its latency).
        if feed.last_time < self._next_due:
            return
        if self._server:
            # A session whose browser has gone has nothing to write to: it takes no turn
            # (not even Bokeh's route) until a connection comes back, and the next update
            # then carries every tick it missed.
            if not BokehWire.connected(self._doc):
                return
            if BokehWire.backlog(self._doc) > _MAX_WRITE_BACKLOG:
                return
            # At most one pending delivery per session: under overload a session gets
            # bigger batches less often, never an unbounded queue.
            self._pending = True
            FanOut.current().enqueue(self)
        else:
            self._flush()

    @param.depends("running", watch=True)
    def _on_running(self) -> None:
        start, stop = self._buttons
        start.disabled, stop.disabled = self.running, not self.running
        if self.running:
            self._next_due = 0.0
            self._flush()  # backfill what was missed while stopped, in one batch

    @param.depends("interval", watch=True)
    def _on_interval(self) -> None:
        self._next_due = 0.0
        self._interval_input.value = self.interval

    def _on_interval_input(self, event) -> None:
        try:
            self.interval = event.new
        except ValueError:
            low, high = self.param.interval.bounds
            log.warning(
                "refused update interval %r from a browser (must be %g-%g s)", event.new, low, high
            )
            event.obj.value = self.interval

    def _on_diagnostics_open(self, event) -> None:
        if event.new:
            self._send_server_stats(time.time())

    # -- updates --------------------------------------------------------------------------

    def _stream_columns(self, batch: TickBatch) -> dict[str, np.ndarray]:
        """``time``, ``seq`` and one raw-price column per symbol the market quotes."""
        by_symbol = np.ascontiguousarray(batch.prices.T)
        # int64: an int32 seq wraps after 2**31 ticks (248 days at 0.01 s ticks). Bokeh
        # still sends it as int32 while it fits.
        data = {"time": batch.time, "seq": batch.seq}
        for i, symbol in enumerate(self.feed.symbols):
            data[symbol] = by_symbol[i]
        return data

    def _initial_columns(self) -> dict[str, np.ndarray]:
        """The rows a new session starts with: the same read-only arrays for every
        session opened at the same tick (one copy of the history, not one each)."""
        by_rollover = _INITIAL_ROWS.setdefault(self.feed, {})
        cached = by_rollover.get(self.rollover)
        if cached is not None and cached[0] == self.feed.last_seq:
            return dict(cached[1])
        columns = self._stream_columns(self.feed.latest(self.rollover))
        for column in columns.values():
            column.flags.writeable = False
        by_rollover[self.rollover] = (self.feed.last_seq, columns)
        return dict(columns)

    def _reference(self) -> np.ndarray:
        return self.feed.open_prices[self._columns]

    def _rows_key(self) -> tuple:
        """What identifies this source's rows: dashboards with equal keys hold equal data."""
        seq = self.source.data["seq"]
        n = len(seq)
        if n == 0:
            return (self._layout_key, "empty")
        first, last = int(seq[0]), int(seq[-1])
        if last - first + 1 == n:  # every tick from first to last, none missed
            return (self._layout_key, first, last)
        return (self._layout_key, "own", id(self))

    def _stats_due(self, now: float) -> bool:
        return self._diagnostics.open and now - self._stats_sent_at >= _SERVER_STATS_PERIOD

    def _deliver(self, updates: dict) -> str | None:
        """Send the due update from a `FanOut` pass, worked out once per distinct update.

        ``updates`` maps a sessions' rows and the feed's last tick to the `SharedUpdate`
        already prepared in this pass. Anything unusual (a backfill, a new trading day,
        diagnostics to refresh, a busy document or connection) takes Bokeh's own route.
        Returns the route taken ("shared" or "bokeh"), or None if nothing was due.
        """
        self._pending = False
        context = self._doc.session_context
        if not self.running or context is None or context.destroyed:  # session closed
            return None
        feed = self.feed
        rows = feed.last_seq - self._last_seq
        if rows <= 0:
            return None
        now = time.time()
        sockets = BokehWire.sockets(self._doc)
        usual = (
            sockets is not None
            and rows <= _JSON_ROWS
            and not self._stats_due(now)
            and not self._dates_due()
            and feed.open_version == self._open_version
        )
        update = None
        if usual:
            key = (self._rows_key(), feed.last_seq)
            update = updates.get(key)
            if update is None:
                batch = feed.since(self._last_seq).tail(self.rollover)
                columns = self._stream_columns(batch)
                update = SharedUpdate.build(batch, self.source.data, columns, self.rollover)
                updates[key] = update
        if update is None:
            self._pending = True
            self._doc.add_next_tick_callback(self._flush)
            return "bokeh"
        # The shared columns replace this source's own, as Bokeh's stream would, without
        # a change event: the message below is that event, already serialized.
        dict.update(self.source.data, update.columns)
        BokehWire.send_patch(sockets, update.content(self.source.id))
        self._account(update.last_seq, update.last_time, update.rows, update.missed, now)
        return "shared"

    def _account(self, last_seq: int, last_time: float, rows: int, missed: int, now: float):
        tolerance = min(self.feed.tick, self.interval) / 2
        self._next_due = last_time + (self.interval - tolerance) * 1000.0
        self._last_seq = last_seq
        self.stats["latency_ms"] = now * 1000.0 - last_time
        self.stats["rows_streamed"] += rows
        self.stats["ticks_missed"] += missed
        self.stats["messages_sent"] += 1

    def _flush(self) -> None:
        """Send every tick since the last update to this view, as one message."""
        self._pending = False
        if not self.running:
            return
        batch = self.feed.since(self._last_seq)
        if not len(batch):
            return
        batch = batch.tail(self.rollover)
        data = self._stream_columns(batch)
        if len(batch) <= _JSON_ROWS:
            # A few rows travel cheaper as JSON inside the message than as binary
            # buffers: each buffer costs two more websocket frames and an id.
            data = {name: column.tolist() for name, column in data.items()}
        now = time.time()
        doc = self._doc if self._server else None
        # The rows go by Bokeh's own route, not inside Panel's hold: a message Panel
        # holds back (while the connection is busy) can be overtaken by the fan-out's
        # next update (seen: a page that received tick 140 before 134-139). Bokeh writes
        # them under the document lock, which the fan-out waits for.
        self.source.stream(data, rollover=self.rollover)
        self._account(batch.last_seq, float(batch.time[-1]), len(batch), batch.missed, now)
        with pn.io.hold(doc):
            if self.feed.open_version != self._open_version:  # a new day began
                self._open_version = self.feed.open_version
                reference = self._reference().tolist()
                for view in self._views:
                    view.reference = reference
                if self.price_view == "% change":
                    self._draw_prices()
            if self._stats_due(now):
                self._send_server_stats(now)
            if self._dates_due():
                self._send_dates(batch.last_seq)
        if not self._server:
            # Raw Bokeh edits reach a notebook page only when pushed; Panel components
            # (the views, the widgets) sync by themselves.
            pn.io.push_notebook(*self._bokeh_panes)

    def _send_server_stats(self, now: float) -> None:
        self._stats_sent_at = now
        self._diagnostics.server = self.server_stats()

    # -- diagnostics ------------------------------------------------------------------------

    def server_stats(self) -> dict:
        """This session's server-side figures and its feed's, as shown in Diagnostics."""
        return {
            **self.stats,
            "latency_ms": round(self.stats["latency_ms"], 3),
            "tick_rate": self.feed.tick_rate,
            "subscribers": self.feed.subscriber_count,
            "last_seq": self._last_seq,
        }
