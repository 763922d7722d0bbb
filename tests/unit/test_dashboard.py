"""LiveDashboard logic without a server: a manual feed drives it tick by tick."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from bokeh.document import Document

from finflow_panel import Holding, LiveDashboard, Portfolio, SharedFeed
from finflow_panel.ui.fanout import FanOut
from tests.util import run_async


@pytest.fixture
def feed():
    portfolio = Portfolio.sample()
    feed = SharedFeed(portfolio.random_walk(seed=1), history=50, manual=True)
    feed.advance(10)
    return feed


class SessionDoc(Document):
    """A Document that poses as a server session's and records scheduled callbacks."""

    session_context = SimpleNamespace(destroyed=False)

    def __init__(self):
        super().__init__()
        self.scheduled = []

    def add_next_tick_callback(self, callback):
        self.scheduled.append(callback)


def test_new_view_starts_with_the_recent_history(feed):
    view = LiveDashboard(feed=feed)
    np.testing.assert_array_equal(view.source.data["seq"], np.arange(10))
    assert set(view.source.data) == {"time", "seq", *feed.symbols}
    for i, symbol in enumerate(feed.symbols):
        np.testing.assert_array_equal(view.source.data[symbol], feed.since(-1).prices[:, i])


def test_a_tick_has_one_value_in_every_session_whatever_its_batches(feed):
    steady, late = LiveDashboard(feed=feed), LiveDashboard(feed=feed)
    for _ in range(30):  # one view takes every tick alone, the other all of them at once
        feed.advance(1)
        steady._flush()
    late._flush()
    for column in ("seq", *feed.symbols):
        np.testing.assert_array_equal(steady.source.data[column], late.source.data[column])


def test_views_of_different_portfolios_hold_the_same_rows_and_share_updates(feed):
    sample = Portfolio.sample()
    small = Portfolio(sample.holdings[:2], portfolio_id="small", name="Small")
    mine, theirs = LiveDashboard(feed=feed), LiveDashboard(feed=feed, portfolio=small)
    assert mine._rows_key() == theirs._rows_key()
    for symbol in feed.symbols:  # one copy of the history for both sessions
        assert mine.source.data[symbol] is theirs.source.data[symbol]
    assert not mine.source.data["seq"].flags.writeable


def test_switching_portfolio_changes_views_and_lines_not_rows(feed):
    from bokeh.models import CustomJSExpr

    view = LiveDashboard(feed=feed)
    rows = dict(view.source.data)
    value_fig, price_fig = view._figures
    other = Portfolio(
        (Holding("NVDA", 4, 120.0, cost_basis=100.0), Holding("AAPL", 2, 190.0)),
        portfolio_id="p2",
        name="Second <b>book</b>",
    )
    view.portfolio = other
    assert view.source.data == rows  # same arrays: nothing to send but the view changes
    assert view.table.symbols == ["NVDA", "AAPL"] and view.table.quantities == [4.0, 2.0]
    assert view.table.cost_basis == [100.0, None]
    assert view._kpis.reference == feed.open_prices[[feed.symbols.index("NVDA"), 0]].tolist()
    assert [r.name for r in price_fig.renderers] == ["NVDA", "AAPL"]
    # % change since the open by default, each from its raw price column
    reference = feed.open_prices[[feed.symbols.index("NVDA"), 0]].tolist()
    assert [r.glyph.y.expr.args for r in price_fig.renderers] == [
        {"column": "NVDA", "reference": reference[0]},
        {"column": "AAPL", "reference": reference[1]},
    ]
    view.price_view = "Price"
    assert [r.glyph.y for r in price_fig.renderers] == ["NVDA", "AAPL"]
    assert price_fig.left[0].axis_label == "Price ($)"
    assert [item.label.value for item in price_fig.legend[0].items] == ["NVDA", "AAPL"]
    expr = value_fig.renderers[0].glyph.y.expr
    assert isinstance(expr, CustomJSExpr)
    assert expr.args == {"symbols": ["NVDA", "AAPL"], "quantities": [4.0, 2.0]}
    assert "Second &lt;b&gt;book&lt;/b&gt;" in view._heading.object
    with pytest.raises(ValueError, match="TSLA"):
        view.portfolio = Portfolio((Holding("TSLA", 1, 200.0),))
    assert view.portfolio is other and view.table.symbols == ["NVDA", "AAPL"]


def test_flush_streams_every_tick_since_the_last_update(feed):
    view = LiveDashboard(feed=feed)
    feed.advance(3)
    view._flush()
    np.testing.assert_array_equal(view.source.data["seq"], np.arange(13))
    assert view.stats["rows_streamed"] == 3 and view.stats["messages_sent"] == 1


def test_stopped_view_receives_nothing_and_start_backfills(feed):
    view = LiveDashboard(feed=feed)
    view._ready = True
    view.running = False
    feed.advance(4)
    view._flush()
    assert len(view.source.data["seq"]) == 10
    view.running = True  # backfills at once
    np.testing.assert_array_equal(view.source.data["seq"], np.arange(14))


def test_rollover_bounds_the_source(feed):
    view = LiveDashboard(feed=feed, rollover=12)
    feed.advance(30)
    view._flush()
    np.testing.assert_array_equal(view.source.data["seq"], np.arange(28, 40))


class RecordingLoop:
    def __init__(self):
        self.callbacks = []

    def add_callback(self, callback):
        self.callbacks.append(callback)


@pytest.fixture
def fanout(monkeypatch):
    fanout = FanOut(RecordingLoop())
    monkeypatch.setattr(FanOut, "current", classmethod(lambda cls: fanout))
    return fanout


def served(view, doc=None):
    view._doc, view._server, view._ready = doc or SessionDoc(), True, True
    return view


def test_at_most_one_pending_delivery_per_session(feed, fanout):
    view = served(LiveDashboard(feed=feed, interval=0.1))
    for _ in range(20):
        view.on_tick(feed)  # the loop is too busy to run the fan-out meanwhile
    assert len(fanout._queue) == 1 and len(fanout._loop.callbacks) == 1
    feed.advance(5)
    fanout._loop.callbacks.pop()()
    # No websocket to write to: the update takes Bokeh's route, still one callback.
    assert len(view._doc.scheduled) == 1
    view._doc.scheduled.pop()()
    assert view.stats["rows_streamed"] == 5  # one bigger batch, not twenty small ones
    assert view.stats["ticks_received"] == 20


@pytest.mark.parametrize("interval", [0.0, 0.05, 61, -1])
def test_out_of_range_interval_is_refused(feed, interval):
    with pytest.raises(ValueError, match="interval"):
        LiveDashboard(feed=feed, interval=interval)


def test_unknown_symbol_is_named(feed):
    book = Portfolio((Holding("AAPL", 1, 100.0), Holding("TSLA", 1, 200.0)))
    with pytest.raises(ValueError, match="unknown symbol.*TSLA"):
        LiveDashboard(portfolio=book, feed=feed)


def _drain(view, fanout):
    while fanout._loop.callbacks or view._doc.scheduled:
        if fanout._loop.callbacks:
            fanout._loop.callbacks.pop()()
        else:
            view._doc.scheduled.pop()()


T0 = 1_800_000_000_000.0  # epoch ms, early in a UTC day


def test_a_longer_interval_gets_every_tick_since_the_last_update_in_one_message(fanout):
    feed = SharedFeed(Portfolio.sample().random_walk(seed=3), tick=0.25, manual=True)
    feed.advance(4, now_ms=T0)
    view = served(LiveDashboard(feed=feed, interval=1.0))
    for i in range(1, 17):  # four seconds of ticks, a quarter second apart
        feed.advance(1, now_ms=T0 + 250.0 * i)
        view.on_tick(feed)
        _drain(view, fanout)
    # Updates at ticks 1, 5, 9 and 13: the first with one row, then four rows each.
    assert view.stats["messages_sent"] == 4
    assert view.stats["rows_streamed"] == 1 + 3 * 4
    np.testing.assert_array_equal(view.source.data["seq"], np.arange(4 + 13))


def test_a_new_day_moves_every_view_to_the_new_open(fanout):
    feed = SharedFeed(Portfolio.sample().random_walk(seed=3), tick=1.0, manual=True)
    feed.advance(3, now_ms=T0)
    view = served(LiveDashboard(feed=feed, interval=1.0))
    yesterday = list(view._kpis.reference)
    feed.advance(1, now_ms=T0 + 86_400_000)
    view.on_tick(feed)
    _drain(view, fanout)
    today = feed.open_prices[view._columns].tolist()
    assert today != yesterday
    for part in view._views:
        assert part.reference == today


def test_sequence_numbers_past_int32_stay_exact_on_the_wire():
    from bokeh.core.serialization import Serializer

    from finflow_panel.client import _decode

    start = 2**31 - 5  # 248 days of 0.01 s ticks
    feed = SharedFeed(
        Portfolio.sample().random_walk(seed=4), history=50, manual=True, start_seq=start
    )
    feed.advance(3)
    view = LiveDashboard(feed=feed)
    feed.advance(7)
    view._flush()
    expected = np.arange(start, start + 10)
    np.testing.assert_array_equal(view.source.data["seq"], expected)
    assert view._rows_key()[1:] == (start, start + 9)  # contiguous rows: shared updates
    # What the browser receives on connect decodes to the same numbers.
    encoded = Serializer(deferred=False).encode(dict(view.source.data))
    decoded = _decode(encoded, {})
    np.testing.assert_array_equal(decoded["seq"], expected)


def test_ticks_made_while_a_page_loads_go_out_as_soon_as_it_is_ready(feed, fanout):
    view = LiveDashboard(feed=feed, interval=5.0)
    view._doc, view._server = SessionDoc(), True
    view._on_ready()  # nothing new since the document was built: wait for a tick
    assert not fanout._queue
    feed.advance(2)  # the page is still loading
    view._on_ready()
    assert list(fanout._queue) == [view]
    _drain(view, fanout)
    np.testing.assert_array_equal(view.source.data["seq"], np.arange(12))


def test_chart_options_from_the_browser_draw_candles_and_indicators(feed):
    view = LiveDashboard(feed=feed)
    controls = view._controls
    value_fig = view._figures[0]
    controls.chart = "Candles"
    assert view.chart == "Candles"
    assert [r.name for r in value_fig.renderers] == ["total_value", "candle_wicks", "candle_bodies"]
    assert not value_fig.renderers[0].visible  # the line hides while candles show
    controls.bar_ticks = 30
    bodies = value_fig.renderers[2]
    assert bodies.glyph.width == 0.7 * 30 * feed.tick * 1000
    assert bodies.view.filter.args == {"bar": 30}
    controls.indicators = ["SMA", "Bollinger"]
    names = [r.name for r in value_fig.renderers]
    assert names[3:] == ["indicator_sma", "indicator_upper", "indicator_lower"]
    controls.series = "MSFT"
    assert value_fig.title.text == "MSFT price \u00b7 candles"
    expr = value_fig.renderers[3].glyph.y.expr
    assert expr.args["symbols"] == ["MSFT"] and expr.args["window"] == 20
    controls.chart, controls.indicators = "Line", []
    assert [r.name for r in value_fig.renderers] == ["total_value"]
    assert value_fig.renderers[0].visible
    # the rows the session holds (and streams) are the raw prices whatever it shows
    assert set(view.source.data) == {"time", "seq", *feed.symbols}


@pytest.mark.parametrize(
    ("name", "value"),
    [("series", "TSLA"), ("window", 1), ("window", 501), ("chart", "Pie"), ("bar_ticks", 7),
     ("indicators", ["SMA", "SMA"]), ("indicators", ["RSI"]), ("price_view", "log")],
)  # fmt: skip
def test_a_bad_chart_option_from_a_browser_is_refused_and_shown_back(feed, name, value, caplog):
    view = LiveDashboard(feed=feed)
    before = getattr(view, name)
    setattr(view._controls, name, value)
    assert getattr(view, name) == before
    assert getattr(view._controls, name) == before
    assert "refused chart option" in caplog.text


def test_a_held_symbol_series_goes_back_to_portfolio_when_no_longer_held(feed):
    view = LiveDashboard(feed=feed, series="NVDA", chart="Candles")
    assert view._figures[0].title.text == "NVDA price \u00b7 candles"  # drawn as made
    view.portfolio = Portfolio((Holding("AAPL", 2, 190.0),))
    assert view.series == "Portfolio" and view._controls.series == "Portfolio"
    with pytest.raises(ValueError, match="TSLA"):
        LiveDashboard(feed=feed, series="TSLA")


def test_alerts_card_adds_fires_logs_and_refuses_bad_values(feed):
    view = LiveDashboard(feed=feed)
    view._attach(None)  # a notebook: no server session
    view.show_alerts()
    card = view.alerts_card
    book, owner = feed.alerts, card.keeper.owner
    assert card.panel in list(view._layout) and view._controls.alerts_open

    def add(target, condition, value):
        card.target.value, card.condition.value, card.value.value = target, condition, value
        run_async(card._on_add())

    aapl = float(feed.prices[feed.symbols.index("AAPL")])
    add("AAPL", "above", None)
    assert card.message.object == "Value: enter a number"
    assert "ff-error" in card.message.css_classes
    add("AAPL", "moves by %", -1.0)
    assert card.message.object == "Value: a move must be a positive per cent"
    assert book.alerts(owner) == []
    add("AAPL", "above", aapl / 2)
    assert card.message.object == f"Added: AAPL above {aapl / 2:,.2f}"
    add("Portfolio", "below", 1e12)
    labels = [a.label for a in book.alerts(owner)]
    assert labels == [f"AAPL above {aapl / 2:,.2f}", "Portfolio below 1,000,000,000,000.00"]
    feed.advance()
    assert [e["message"].split(":")[0] for e in card.log] == labels[::-1]
    value = float(view.portfolio.quantities @ feed.prices[view._columns])
    assert card.log[0]["current"] == pytest.approx(value)
    assert "AAPL above" in card.log_pane.object and "Portfolio below" in card.log_pane.object
    feed.advance()
    assert len(card.log) == 2  # still true: no repeat until re-armed
    # a new portfolio: Portfolio alerts value it
    view.portfolio = Portfolio((Holding("AAPL", 3, 190.0),))
    prices = np.ones(len(feed.symbols))
    prices[feed.symbols.index("AAPL")] = 2e12
    # 3 AAPL at 2e12: not below 1e12, so it re-arms (AAPL above stays true: quiet)
    assert book.evaluate(prices, feed.open_prices, 99, 0.0) == []
    events = book.evaluate(prices / 1e9, feed.open_prices, 100, 0.0)  # 6e3: below again
    assert [e.alert.target for e in events] == ["Portfolio"]
    assert events[0].current == pytest.approx(6000.0)
    first = book.alerts(owner)[0]
    run_async(card._remove(first.alert_id))
    assert [a.label for a in book.alerts(owner)] == labels[1:]
    view.close()
    assert book.alerts(owner) == []
