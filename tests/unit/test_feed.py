"""The shared feed driven by its manual clock: no sleeping, no server."""

from __future__ import annotations

import numpy as np
import pytest

from finflow_panel import RandomWalk
from finflow_panel.feed import SharedFeed, TickRing

SYMBOLS = ("AAPL", "MSFT", "GOOGL")
T0 = 1_790_000_000_000.0  # epoch ms


def make_feed(history=5, **params):
    return SharedFeed(RandomWalk(SYMBOLS, seed=1), history=history, manual=True, **params)


class Recorder:
    def __init__(self):
        self.seen = []

    def on_tick(self, feed):
        self.seen.append(feed.last_seq)


def test_ticks_are_numbered_timestamped_and_match_the_walk():
    feed = make_feed()
    for i in range(3):
        feed.advance(now_ms=T0 + 1000 * i)
    batch = feed.since(-1)
    np.testing.assert_array_equal(batch.seq, [0, 1, 2])
    np.testing.assert_array_equal(batch.time, [T0, T0 + 1000, T0 + 2000])
    np.testing.assert_array_equal(batch.prices, RandomWalk(SYMBOLS, seed=1).step(3))
    assert batch.symbols == SYMBOLS and batch.missed == 0


def test_since_returns_only_newer_ticks_and_reports_what_fell_out():
    feed = make_feed(history=5)
    feed.advance(8, now_ms=T0)
    assert feed.last_seq == 7
    np.testing.assert_array_equal(feed.since(5).seq, [6, 7])
    assert len(feed.since(7)) == 0
    old = feed.since(0)  # ticks 1 and 2 are gone: the ring holds 3..7
    np.testing.assert_array_equal(old.seq, [3, 4, 5, 6, 7])
    assert old.missed == 2
    np.testing.assert_array_equal(feed.latest(2).seq, [6, 7])


def test_ring_wraps_around_in_order():
    ring = TickRing(("A",), capacity=4)
    for start in range(0, 10, 3):
        n = 3
        ring.append(np.arange(start, start + n, dtype=float), np.arange(start, start + n)[:, None])
    batch = ring.since(-1)
    np.testing.assert_array_equal(batch.seq, [8, 9, 10, 11])
    np.testing.assert_array_equal(batch.time, [8, 9, 10, 11])
    np.testing.assert_array_equal(batch.prices[:, 0], [8, 9, 10, 11])


def test_multi_tick_advance_spaces_times_by_the_tick():
    feed = make_feed(history=10, tick=0.5)
    batch = feed.advance(3, now_ms=T0)
    np.testing.assert_array_equal(batch.time, [T0 - 1000, T0 - 500, T0])


def test_subscribers_hear_every_tick_and_can_leave():
    feed = make_feed()
    a, b = Recorder(), Recorder()
    leave_a = feed.subscribe(a)
    feed.subscribe(b)
    assert feed.subscriber_count == 2
    feed.advance()
    leave_a()
    leave_a()  # idempotent
    feed.advance()
    assert a.seen == [0] and b.seen == [0, 1]
    assert feed.subscriber_count == 1


def test_a_failing_subscriber_does_not_stop_the_others(caplog):
    class Broken:
        def on_tick(self, feed):
            raise RuntimeError("boom")

    feed = make_feed()
    good = Recorder()
    feed.subscribe(Broken())
    feed.subscribe(good)
    feed.advance()
    assert good.seen == [0]
    assert "failed on tick 0" in caplog.text


def test_manual_feed_never_installs_a_timer():
    feed = make_feed(always_on=True)
    feed.subscribe(Recorder())
    assert not feed.running


def test_timer_follows_subscribers_pause_and_tick():
    feed = SharedFeed(RandomWalk(SYMBOLS, seed=1), tick=1.0)
    assert not feed.running  # nobody listening: no timer, no CPU
    recorder = Recorder()
    leave = feed.subscribe(recorder)
    assert feed.running
    timer = feed._timer
    feed.tick = 0.5
    assert feed.running and feed._timer is not timer
    assert feed._timer.callback_time == 500.0
    feed.paused = True
    assert not feed.running
    feed.paused = False
    assert feed.running
    leave()
    assert not feed.running
    feed.always_on = True
    assert feed.running
    feed.stop()


def test_open_prices_reset_when_the_day_changes():
    feed = make_feed()
    start = feed.open_prices
    np.testing.assert_array_equal(start, RandomWalk(SYMBOLS, seed=1).prices)
    feed.advance(now_ms=T0)
    np.testing.assert_array_equal(feed.open_prices, start)
    feed.advance(now_ms=T0 + 86_400_000)
    np.testing.assert_array_equal(feed.open_prices, feed.since(0).prices[0])


def test_tick_rate_is_measured_from_timestamps():
    feed = make_feed(history=50)
    assert feed.tick_rate == 0.0
    for i in range(11):
        feed.advance(now_ms=T0 + 250 * i)
    assert feed.tick_rate == pytest.approx(4.0)


@pytest.mark.parametrize(("history", "error"), [(0, ValueError), (-3, ValueError)])
def test_bad_history(history, error):
    with pytest.raises(error, match="history"):
        SharedFeed(RandomWalk(SYMBOLS), history=history)


def test_bad_tick():
    with pytest.raises(ValueError, match="tick"):
        SharedFeed(RandomWalk(SYMBOLS), tick=0)


def test_one_feed_per_process_key():
    made = []

    def factory():
        made.append(make_feed())
        return made[-1]

    key = ("test_one_feed_per_process_key", 1)
    try:
        assert SharedFeed.for_process(key, factory) is SharedFeed.for_process(key, factory)
        assert len(made) == 1
    finally:
        SharedFeed._process_feeds.pop(key, None)


def test_a_feed_can_continue_another_feeds_numbering():
    feed = make_feed(history=4, start_seq=1_000)
    assert feed.last_seq == 999 and len(feed.since(-1)) == 0
    feed.advance(6, now_ms=T0)
    np.testing.assert_array_equal(feed.since(-1).seq, [1_002, 1_003, 1_004, 1_005])
    assert feed.since(1_003).seq.tolist() == [1_004, 1_005]
    assert feed.since(1_000).missed == 1  # 1_001 has left the buffer


def test_a_ring_restarted_later_holds_nothing_and_counts_the_gap_as_missed():
    ring = TickRing(("A",), 10)
    ring.append(np.array([1.0, 2.0]), np.array([[1.0], [2.0]]))
    ring.restart_at(5)
    assert len(ring) == 0 and ring.last_seq == 4
    ring.append(np.array([6.0]), np.array([[6.0]]))
    batch = ring.since(1)
    assert batch.seq.tolist() == [5] and batch.missed == 3
    with pytest.raises(ValueError, match="tick 5 is held"):
        ring.restart_at(3)
