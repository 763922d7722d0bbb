"""Price alerts: one vectorized check per tick for every alert on a feed, manual clock."""

from __future__ import annotations

import numpy as np
import pytest

from finflow_panel import Portfolio, RandomWalk
from finflow_panel.feed import PORTFOLIO, AlertBook, AlertError, SharedFeed

SYMBOLS = ("AAPL", "MSFT", "GOOGL")
OPEN = np.array([100.0, 200.0, 50.0])


def tick(book, aapl=100.0, msft=200.0, googl=50.0, seq=0):
    return book.evaluate([aapl, msft, googl], OPEN, seq, 1_790_000_000_000.0 + 1000 * seq)


def fired(events):
    return [e.alert.alert_id for e in events]


def test_above_fires_on_the_crossing_tick_and_rearms_only_after_falling_back():
    book = AlertBook(SYMBOLS)
    a = book.add("AAPL", "above", 110)
    prices = [100, 109.99, 110.5, 112, 111, 108, 110, 115]
    got = [fired(tick(book, aapl=p, seq=i)) for i, p in enumerate(prices)]
    # fires at 110.5, stays quiet while above, re-arms at 108, fires again at 110
    assert got == [[], [], [a.alert_id], [], [], [], [a.alert_id], []]


def test_below_and_an_alert_already_true_fires_on_the_next_tick():
    book = AlertBook(SYMBOLS)
    a = book.add("MSFT", "below", 250)  # already true at 200
    assert fired(tick(book, seq=1)) == [a.alert_id]
    assert fired(tick(book, seq=2)) == []
    assert fired(tick(book, msft=251, seq=3)) == []
    assert fired(tick(book, msft=249, seq=4)) == [a.alert_id]


def test_moves_by_percent_counts_either_way_from_the_days_open():
    book = AlertBook(SYMBOLS)
    a = book.add("GOOGL", "moves by %", 2)
    assert fired(tick(book, googl=50.9, seq=1)) == []  # +1.8%
    events = tick(book, googl=48.9, seq=2)  # -2.2%
    assert fired(events) == [a.alert_id]
    assert events[0].move == pytest.approx(-2.2)
    assert events[0].message == "GOOGL moves by 2%: now -2.20%"
    assert fired(tick(book, googl=48.0, seq=3)) == []  # still moved: no repeat
    assert fired(tick(book, googl=50.0, seq=4)) == []  # back: re-armed
    assert fired(tick(book, googl=51.5, seq=5)) == [a.alert_id]  # +3%


def test_portfolio_total_is_the_owners_holdings_valued_at_the_tick():
    book = AlertBook(SYMBOLS)
    # 10 AAPL + 1 MSFT: 1,200 at the open
    a = book.add(PORTFOLIO, "above", 1250, owner="ann", weights={"AAPL": 10, "MSFT": 1})
    b = book.add(PORTFOLIO, "above", 1250, owner="bob", weights=[0, 0, 10])  # 500
    assert fired(tick(book, aapl=104, seq=1)) == []  # 1,240
    events = tick(book, aapl=105.5, seq=2)  # 1,255
    assert fired(events) == [a.alert_id]
    assert events[0].current == pytest.approx(1255.0)
    assert events[0].message == "Portfolio above 1,250.00: now 1,255.00"
    # ann's holdings change: her alert values the new ones
    book.set_weights("ann", {"GOOGL": 1})
    assert fired(tick(book, aapl=105.5, seq=3)) == []
    book.set_weights("bob", [0, 0, 30])  # 1,500
    assert fired(tick(book, seq=4)) == [b.alert_id]


def test_callbacks_get_their_own_events_and_removed_alerts_stay_quiet():
    book = AlertBook(SYMBOLS)
    seen = {"ann": [], "bob": []}
    a = book.add("AAPL", "above", 101, owner="ann", callback=seen["ann"].append)
    b = book.add("AAPL", "above", 102, owner="bob", callback=seen["bob"].append)
    c = book.add("MSFT", "above", 1, owner="bob", callback=seen["bob"].append)
    assert book.remove(c.alert_id)
    assert not book.remove(c.alert_id)
    tick(book, aapl=101.5, seq=1)
    tick(book, aapl=103, seq=2)
    assert [e.alert for e in seen["ann"]] == [a]
    assert [e.alert for e in seen["bob"]] == [b]
    assert seen["bob"][0].seq == 2
    assert book.alerts("bob") == [b]
    assert book.remove_owner("bob") == 1
    assert book.alerts("bob") == [] and len(book) == 1


def test_a_failing_callback_does_not_stop_the_others():
    book = AlertBook(SYMBOLS)
    seen = []
    book.add("AAPL", "above", 1, callback=lambda e: 1 / 0)
    book.add("AAPL", "above", 1, callback=seen.append)
    tick(book, seq=1)
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("target", "condition", "value", "field"),
    [
        ("AAPL", "above", "", "Value: enter a number"),
        ("AAPL", "above", None, "Value: enter a number"),
        ("AAPL", "above", "ten", "Value: 'ten' is not a number"),
        ("AAPL", "above", float("nan"), "Value: nan is not a usable number"),
        ("AAPL", "moves by %", -1, "Value: a move must be a positive per cent"),
        ("AAPL", "below", 0, "Value: a price or value must be positive"),
        ("TSLA", "above", 1, "Target: unknown symbol 'TSLA'"),
        ("", "above", 1, "Target: choose a symbol or Portfolio"),
        ("AAPL", "crosses", 1, "Condition: must be one of above, below, moves by %"),
        (PORTFOLIO, "above", 1, "Target: Portfolio needs the portfolio's holdings"),
    ],
)
def test_bad_alerts_are_refused_by_field_and_add_nothing(target, condition, value, field):
    book = AlertBook(SYMBOLS)
    with pytest.raises(AlertError) as error:
        book.add(target, condition, value)
    assert str(error.value) == field
    assert len(book) == 0 and book.alerts() == []


def test_many_alerts_grow_compact_and_still_fire_the_right_ones():
    book = AlertBook(SYMBOLS, capacity=4)
    added = [book.add("AAPL", "above", 100 + i, owner=i % 40) for i in range(1000)]
    for alert in added[::2]:
        book.remove(alert.alert_id)
    for i in range(1000, 1600):  # fills freed room: compaction, then growth
        added.append(book.add("AAPL", "above", 100 + (i - 1000), owner=i % 40 + 40))
    events = tick(book, aapl=110.5, seq=1)
    expected = {a.alert_id for a in added if a.value <= 110.5 and a.alert_id in book._slots}
    assert set(fired(events)) == expected
    assert len(expected) == 5 + 11  # odd thresholds 101..109 kept, and 100..110 added later


def test_an_owner_keeps_at_most_fifty_alerts():
    book = AlertBook(SYMBOLS)
    for i in range(50):
        book.add("AAPL", "above", 1 + i, owner="ann")
    with pytest.raises(AlertError, match="at most 50 alerts"):
        book.add("AAPL", "above", 1, owner="ann")
    book.add("AAPL", "above", 1, owner="bob")


def test_a_feed_checks_its_alerts_on_every_tick_before_subscribers_hear():
    feed = SharedFeed(RandomWalk(SYMBOLS, seed=3), manual=True, history=50)
    order = []
    first = float(feed.prices[0])
    alert = feed.alerts.add("AAPL", "above", first / 2, callback=lambda e: order.append(e.seq))

    class Sub:
        def on_tick(self, feed):
            order.append(("tick", feed.last_seq))

    feed.subscribe(Sub())
    feed.advance(3, now_ms=1_790_000_000_000.0)  # three ticks at once: checked in order
    assert order == [0, ("tick", 2)]  # fired on the first tick only, before the notice
    assert feed.alerts.alerts() == [alert]
    assert feed.alerts.evaluated == 3


def test_a_notebook_portfolio_alert_takes_a_portfolio():
    portfolio = Portfolio.sample()
    feed = SharedFeed(portfolio.random_walk(seed=1), manual=True)
    events = []
    feed.alerts.add(PORTFOLIO, "below", 1e12, weights=portfolio, callback=events.append)
    feed.advance()
    value = float(portfolio.quantities @ feed.prices)
    assert events and events[0].current == pytest.approx(value)


def test_a_feed_ticks_while_an_alert_is_set_even_with_no_subscriber():
    from tests.util import run_async, until

    async def main():
        feed = SharedFeed(RandomWalk(SYMBOLS, seed=3), tick=0.05)
        seen = []
        assert not feed.running
        alert = feed.alerts.add("AAPL", "above", 1, callback=seen.append)
        assert feed.running and feed.subscriber_count == 0
        await until(lambda: seen, timeout=10, what="the alert to fire")
        assert seen[0].alert == alert
        feed.alerts.remove(alert.alert_id)
        assert not feed.running

    run_async(main())
