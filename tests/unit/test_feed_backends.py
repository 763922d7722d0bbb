"""One test suite for both feed backends: in memory, and through a real Redis server.

Each test runs a feed on a real event loop with a short tick, as a server would.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from finflow_panel.feed import RedisFeed, SharedFeed
from finflow_panel.sim import RandomWalk
from tests.util import run_async, until

SYMBOLS = ("AAPL", "MSFT", "XOM")
TICK = 0.05


def _walk(seed=3):
    return RandomWalk(SYMBOLS, start_prices=[190.0, 410.0, 110.0], seed=seed, dt=1e-4)


class Recorder:
    """A subscriber that reads every tick it is told of, as a dashboard would."""

    def __init__(self):
        self.seqs: list[int] = []
        self.last = -1

    def on_tick(self, feed):
        batch = feed.since(self.last)
        self.seqs.extend(batch.seq.tolist())
        self.last = batch.last_seq if len(batch) else self.last


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_feed(request):
    """Makes feeds of one backend; Redis ones share a fresh redis-server."""
    if request.param == "memory":

        async def make(**params):
            feed = SharedFeed(_walk(), tick=TICK, **params)
            return feed

        async def close(feed):
            feed.stop()

    else:
        redis = request.getfixturevalue("redis_server")

        async def make(**params):
            feed = RedisFeed(
                _walk(), redis.url, key=f"test:{uuid.uuid4().hex}", tick=TICK, **params
            )
            feed.start()
            await until(lambda: not feed.stalled, what="connected to Redis")
            return feed

        async def close(feed):
            await feed.close()

    made = []

    async def factory(**params):
        feed = await make(**params)
        made.append(feed)
        return feed

    async def cleanup():
        for feed in made:
            await close(feed)

    factory.cleanup = cleanup
    return factory


def _run(make_feed, coroutine_function):
    async def main():
        try:
            await coroutine_function()
        finally:
            await make_feed.cleanup()

    run_async(main())


def test_a_subscriber_is_told_of_every_tick_in_order(make_feed):
    async def main():
        feed = await make_feed()
        recorder = Recorder()
        feed.subscribe(recorder)
        await until(lambda: len(recorder.seqs) >= 10, what="10 ticks")
        seqs = np.array(recorder.seqs)
        np.testing.assert_array_equal(seqs, np.arange(seqs[0], seqs[0] + len(seqs)))
        batch = feed.since(seqs[0] - 1)
        assert (np.diff(batch.time) > 0).all()
        assert batch.prices.shape[1] == len(SYMBOLS) and (batch.prices > 0).all()

    _run(make_feed, main)


def test_history_is_capped_and_latest_reads_the_newest(make_feed):
    async def main():
        feed = await make_feed(history=5)
        feed.subscribe(Recorder())
        await until(lambda: feed.last_seq >= 12, what="13 ticks")
        held = feed.since(-1)
        assert len(held) == 5 and held.missed > 0
        assert feed.latest(2).seq.tolist() == held.seq[-2:].tolist()

    _run(make_feed, main)


def test_an_unsubscribed_recorder_hears_nothing_more(make_feed):
    async def main():
        feed = await make_feed()
        recorder = Recorder()
        unsubscribe = feed.subscribe(recorder)
        await until(lambda: len(recorder.seqs) >= 3, what="3 ticks")
        unsubscribe()
        heard = len(recorder.seqs)
        other = Recorder()
        feed.subscribe(other)
        await until(lambda: len(other.seqs) >= 3, what="3 more ticks")
        assert len(recorder.seqs) == heard

    _run(make_feed, main)
