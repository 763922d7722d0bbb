"""Replaying price history: the source, the feed's end and loop, the app's options and a
real public price history (vega-datasets' stocks, bundled with the package)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from finflow_panel.app import ServeConfig, process_portfolio, process_universe, replay_portfolio
from finflow_panel.feed import SharedFeed
from finflow_panel.model.history import (
    SAMPLE_PRICES,
    calibrate,
    date_labels,
    load_prices,
    load_replay,
)
from finflow_panel.sim import Replay
from tests.util import run_async, until

ROWS = np.array([[10.0, 20.0], [11.0, 19.0], [12.0, 18.0], [13.0, 17.0], [14.0, 16.0]])
DATES = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]


class StateRecorder:
    def __init__(self):
        self.ticks = 0
        self.states = []

    def on_tick(self, feed):
        self.ticks += 1

    def on_feed_state(self, feed):
        self.states.append(feed.finished)


def _file(tmp_path, rows=ROWS, dates=DATES, symbols=("AAA", "BBB")):
    frame = pd.DataFrame(rows, columns=list(symbols))
    frame.insert(0, "date", dates)
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    return path


# -- the source -----------------------------------------------------------------------


def test_a_replay_plays_rows_in_order_then_ends():
    replay = Replay(["AAA", "BBB"], ROWS, labels=DATES)
    np.testing.assert_array_equal(replay.prices, ROWS[0])  # before any step: the first row
    assert replay.remaining == 5 and replay.ends_after == 5
    np.testing.assert_array_equal(replay.step(2), ROWS[:2])
    np.testing.assert_array_equal(replay.prices, ROWS[1])
    np.testing.assert_array_equal(replay.step(10), ROWS[2:])  # fewer rows at the end
    assert replay.remaining == 0
    with pytest.raises(EOFError, match="5 rows have all been played"):
        replay.step()
    assert [replay.label(k) for k in (0, 4, 5, -1)] == [DATES[0], DATES[4], None, None]


def test_a_looping_replay_starts_again_and_keeps_counting():
    replay = Replay(["AAA", "BBB"], ROWS, labels=DATES, loop=True)
    assert replay.remaining is None and replay.ends_after is None
    block = replay.step(12)
    np.testing.assert_array_equal(block, ROWS[np.arange(12) % 5])
    assert replay.steps_taken == 12
    assert replay.label(12) == DATES[2]
    block[0, 0] = -1.0  # the caller's copy: the replay's rows are untouched
    assert replay.rows[0, 0] == 10.0


def test_replay_state_continues_elsewhere():
    a, b = Replay(["AAA", "BBB"], ROWS), Replay(["AAA", "BBB"], ROWS)
    a.step(3)
    b.set_state(a.get_state())
    np.testing.assert_array_equal(a.step(2), b.step(2))
    c = Replay(["AAA", "BBB"], ROWS)
    c.set_state({"ticks": 4})  # a feed's count of ticks made, when no state was kept
    np.testing.assert_array_equal(c.step(), ROWS[4:5])
    for bad in ({"ticks": -1}, {"ticks": "3"}, {}, {"ticks": 9}):
        with pytest.raises(ValueError, match="replay state"):
            c.set_state(bad)
    assert (
        a.fingerprint() == b.fingerprint() != Replay(["AAA", "BBB"], ROWS, loop=True).fingerprint()
    )


@pytest.mark.parametrize(
    ("symbols", "rows", "labels", "match"),
    [
        ([], ROWS, None, "one unique name"),
        (["A", "A"], ROWS, None, "one unique name"),
        (["A"], ROWS, None, r"\(rows, 1\) array"),
        (["A", "B"], np.empty((0, 2)), None, "at least one row"),
        (["A", "B"], [[1.0, 0.0]], None, "greater than 0"),
        (["A", "B"], [[1.0, np.nan]], None, "finite"),
        (["A", "B"], ROWS, DATES[:2], "2 labels for 5 rows"),
    ],
)
def test_a_replay_refuses_what_it_cannot_play(symbols, rows, labels, match):
    with pytest.raises(ValueError, match=match):
        Replay(symbols, rows, labels=labels)


def test_date_labels_are_as_precise_as_the_dates():
    assert date_labels(pd.to_datetime(["2024-01-02", "2024-01-03"])) == DATES[:2]
    minutes = pd.to_datetime(["2024-01-02 09:30", "2024-01-02 09:35"])
    assert date_labels(minutes) == ["2024-01-02 09:30", "2024-01-02 09:35"]
    seconds = pd.to_datetime(["2024-01-02 09:30:00", "2024-01-02 09:30:05"])
    assert date_labels(seconds)[1] == "2024-01-02 09:30:05"


# -- the feed -------------------------------------------------------------------------


def test_a_feed_on_a_replay_ends_with_the_file_and_says_so():
    feed = SharedFeed(Replay(["AAA", "BBB"], ROWS, labels=DATES), manual=True)
    recorder = StateRecorder()
    feed.subscribe(recorder)
    assert feed.label(feed.last_seq) is None  # before the first tick
    batch = feed.advance(3)
    np.testing.assert_array_equal(batch.prices, ROWS[:3])
    assert feed.label(feed.last_seq) == DATES[2] and not feed.finished
    batch = feed.advance(5)  # only two rows are left
    np.testing.assert_array_equal(batch.prices, ROWS[3:])
    np.testing.assert_array_equal(feed.since(-1).seq, np.arange(5))
    assert feed.finished and recorder.states == [True]
    assert len(feed.advance()) == 0 and feed.last_seq == 4 and recorder.ticks == 2
    assert feed.labels(3, 10) == DATES[3:]  # nothing past the end


def test_a_finished_feed_stops_its_clock_and_a_subscriber_does_not_restart_it():
    async def main():
        feed = SharedFeed(Replay(["AAA", "BBB"], ROWS), tick=0.01)
        feed.subscribe(StateRecorder())
        assert feed.running
        await until(lambda: feed.finished, timeout=10, what="the replay's end")
        assert not feed.running and feed.last_seq == 4
        feed.subscribe(StateRecorder())
        assert not feed.running

    run_async(main())


def test_a_looping_replay_feed_keeps_increasing_sequence_numbers():
    feed = SharedFeed(Replay(["AAA", "BBB"], ROWS, labels=DATES, loop=True), manual=True)
    batch = feed.advance(13)
    np.testing.assert_array_equal(batch.seq, np.arange(13))
    np.testing.assert_array_equal(batch.prices, ROWS[np.arange(13) % 5])
    assert not feed.finished and feed.label(12) == DATES[2]


def test_a_feed_continuing_a_numbering_labels_from_its_first_tick():
    feed = SharedFeed(Replay(["AAA", "BBB"], ROWS, labels=DATES), manual=True, start_seq=100)
    feed.advance(5)
    assert feed.label(100) == DATES[0] and feed.label(104) == DATES[4] and feed.finished


# -- the dashboard --------------------------------------------------------------------


@pytest.fixture
def dates_ahead(monkeypatch):
    from finflow_panel.ui import dashboard

    monkeypatch.setattr(dashboard, "_DATES_AHEAD", 3)


def _replay_dashboard(**params):
    from finflow_panel import LiveDashboard

    replay = Replay(["AAA", "BBB"], ROWS, labels=DATES)
    feed = SharedFeed(replay, manual=True)
    feed.advance(1)
    view = LiveDashboard(portfolio=replay_portfolio(replay, "p.csv"), feed=feed, **params)
    return feed, view


def test_the_dashboard_shows_the_replayed_date_and_the_end(dates_ahead):
    feed, view = _replay_dashboard()
    feed.subscribe(view)  # as a page's view does once it is shown
    # The table of dates starts at the newest tick the page holds.
    assert view._kpis.market_dates == {"seq": 0, "dates": DATES[:3]}
    feed.advance(2)  # ticks 1-2: still inside the table
    view._flush()
    assert view._kpis.market_dates["seq"] == 0
    feed.advance(1)  # tick 3 is past it: the update carries the next dates
    view._flush()
    assert view._kpis.market_dates == {"seq": 3, "dates": DATES[3:]}  # none past the end
    assert not view._status.feed_finished
    feed.advance(1)
    view._flush()
    assert view._status.feed_finished and view.source.data["seq"][-1] == 4


def test_a_page_due_new_dates_takes_bokehs_route(dates_ahead, monkeypatch):
    from types import SimpleNamespace

    from bokeh.document import Document

    from finflow_panel.ui.fanout import BokehWire
    from tests.unit.test_fanout import FakeWebSocket

    class RecordingDoc(Document):
        session_context = SimpleNamespace(destroyed=False)
        callbacks_added: list = []

        def add_next_tick_callback(self, callback):
            self.callbacks_added.append(callback)

    monkeypatch.setattr(BokehWire, "sockets", staticmethod(lambda doc: [FakeWebSocket()]))
    feed, view = _replay_dashboard(interval=0.1)
    view._doc, view._server, view._ready = RecordingDoc(), True, True
    feed.advance(1)
    assert view._deliver({}) == "shared"  # a plain update: the shared message
    feed.advance(2)  # tick 3 is past the page's dates
    assert view._deliver({}) == "bokeh" and view._doc.callbacks_added == [view._flush]


# -- the app's options ----------------------------------------------------------------


def test_serve_config_checks_the_replay_options(tmp_path):
    path = str(_file(tmp_path))
    with pytest.raises(ValueError, match="--replay-loop needs --replay FILE"):
        ServeConfig(replay_loop=True)
    with pytest.raises(ValueError, match="cannot be combined"):
        ServeConfig(replay=path, universe=path)
    env = {"FINFLOW_REPLAY": path, "FINFLOW_REPLAY_LOOP": "yes"}
    assert ServeConfig.from_env(env) == ServeConfig(replay=path, replay_loop=True)
    with pytest.raises(ValueError, match="FINFLOW_REPLAY_LOOP='maybe' is not a yes/no"):
        ServeConfig.from_env({"FINFLOW_REPLAY": path, "FINFLOW_REPLAY_LOOP": "maybe"})


def test_without_a_portfolio_a_replay_holds_one_unit_of_each_symbol(tmp_path):
    config = ServeConfig(replay=str(_file(tmp_path)), tick=0.5)
    portfolio = process_portfolio(config)
    assert portfolio.symbols == ("AAA", "BBB") and portfolio.name == "Replay of prices.csv"
    np.testing.assert_array_equal(portfolio.quantities, [1.0, 1.0])
    np.testing.assert_array_equal(portfolio.reference_prices, ROWS[0])
    assert process_universe(config).symbols == ("AAA", "BBB")


def test_a_portfolio_must_hold_only_replayed_symbols(tmp_path):
    holdings = tmp_path / "holdings.csv"
    holdings.write_text("symbol,quantity,price\nAAA,3,10\nZZZ,1,5\n")
    config = ServeConfig(replay=str(_file(tmp_path)), portfolio=str(holdings))
    with pytest.raises(ValueError, match=r"holdings.csv: unknown symbol\(s\) ZZZ"):
        process_portfolio(config)


def test_a_replayed_file_is_checked_before_serving(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,AAA\n2024-01-02,10\n2024-01-03,-1\n")
    with pytest.raises(ValueError, match=r"bad.csv, row 3: AAA's price must be positive"):
        process_portfolio(ServeConfig(replay=str(bad)))
    clash = _file(tmp_path, symbols=("AAA", "seq"))
    with pytest.raises(ValueError, match="clash with the chart's own columns"):
        process_portfolio(ServeConfig(replay=str(clash)))
    many = _file(tmp_path, rows=np.ones((2, 51)), dates=DATES[:2],
                 symbols=[f"S{i}" for i in range(51)])  # fmt: skip
    with pytest.raises(ValueError, match="51 symbols is more than a dashboard shows.*--portfolio"):
        process_portfolio(ServeConfig(replay=str(many)))


# -- a real, public price history -----------------------------------------------------


def test_the_bundled_public_history_loads_calibrates_and_replays():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prices = load_prices(SAMPLE_PRICES)
    # GOOG's first close is in August 2004: earlier months are dropped, and said so.
    assert [str(w.message) for w in caught] == [
        f"{SAMPLE_PRICES}: dropped 55 leading date(s) before every symbol had a price"
    ]
    assert list(prices.columns) == ["MSFT", "AMZN", "IBM", "GOOG", "AAPL"]
    assert prices.index[0] == pd.Timestamp("2004-08-01")
    assert prices.index[-1] == pd.Timestamp("2010-03-01") and len(prices) == 68
    # Values straight from the file's lines.
    assert prices.loc["2004-08-01", "GOOG"] == 102.37
    assert prices.loc["2010-03-01", "AAPL"] == 223.02
    assert prices.loc["2008-10-01", "MSFT"] == 21.57
    calibration = calibrate(prices)
    assert calibration.periods_per_year == 12.0 and calibration.observations == 67
    # Hand-checkable: AAPL's annualized volatility of monthly log returns.
    returns = np.diff(np.log(prices["AAPL"].to_numpy()))
    assert calibration.volatility["AAPL"] == pytest.approx(returns.std(ddof=1) * np.sqrt(12))
    assert 0.2 < calibration.volatility["AAPL"] < 0.6  # a volatile stock in 2004-2010
    assert calibration.correlation.loc["MSFT", "IBM"] > 0.3  # large US tech moves together
    with pytest.warns(UserWarning, match="dropped 55 leading"):
        replay = load_replay(SAMPLE_PRICES)
    assert replay.symbols == tuple(prices.columns) and replay.label(0) == "2004-08-01"
    np.testing.assert_array_equal(replay.step(68), prices.to_numpy())


def test_the_readmes_real_time_adapter_works_as_documented():
    """The README's example source, run as written, then fed quotes."""
    import re
    from pathlib import Path

    readme = Path(__file__).parents[2] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    (example,) = [b for b in blocks if "class VendorQuotes" in b]
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102
    feed, quotes, view = namespace["feed"], namespace["quotes"], namespace["dashboard"]
    quotes.on_quote("MSFT", 412.5)
    feed.advance(2)
    np.testing.assert_array_equal(feed.since(-1).prices, [[190.0, 412.5], [190.0, 412.5]])
    view._flush()
    assert view.source.data["MSFT"][-1] == 412.5 and not feed.finished
