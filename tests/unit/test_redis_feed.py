"""Several processes' feeds on one real Redis: one market, failover, outages.

Each feed here stands for one server process (its own token, its own ring buffer);
they share a real ``redis-server``.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pytest

from finflow_panel.feed import RedisFeed
from finflow_panel.sim import RandomWalk
from tests.util import run_async, until

pytestmark = pytest.mark.redis

SYMBOLS = ("AAPL", "MSFT", "XOM")
TICK = 0.1


class Recorder:
    def __init__(self):
        self.rows: dict[int, tuple[float, tuple]] = {}
        self.arrivals: list[tuple[float, int]] = []
        self.last = -1

    def on_tick(self, feed):
        batch = feed.since(self.last)
        for seq, t, prices in zip(batch.seq, batch.time, batch.prices, strict=True):
            self.rows[int(seq)] = (float(t), tuple(prices))
            self.arrivals.append((time.monotonic(), int(seq)))
        if len(batch):
            self.last = batch.last_seq


def _feeds(url, n, key=None, history=500, warmup=20):
    key = key or f"test:{uuid.uuid4().hex}"
    feeds = []
    for i in range(n):
        walk = RandomWalk(SYMBOLS, start_prices=[190.0, 410.0, 110.0], seed=i, dt=1e-4)
        feed = RedisFeed(walk, url, key=key, tick=TICK, history=history, warmup=warmup)
        feeds.append(feed)
    return feeds


async def _started(feeds):
    recorders = []
    for feed in feeds:
        recorder = Recorder()
        feed.subscribe(recorder)
        feed.start()
        recorders.append(recorder)
    await until(lambda: sum(f.is_leader for f in feeds) == 1, what="a leader")
    return recorders


def _continuous(recorder):
    seqs = sorted(recorder.rows)
    np.testing.assert_array_equal(np.diff(seqs), 1)
    return seqs


def test_every_process_streams_the_same_price_and_time_for_each_tick(redis_server):
    async def main():
        feeds = _feeds(redis_server.url, 3)
        recorders = await _started(feeds)
        await until(lambda: all(len(r.rows) >= 40 for r in recorders), what="40 ticks each")
        assert sum(f.is_leader for f in feeds) == 1
        common = set.intersection(*(set(r.rows) for r in recorders))
        assert len(common) >= 35
        for seq in common:
            assert recorders[0].rows[seq] == recorders[1].rows[seq] == recorders[2].rows[seq]
        for recorder in recorders:
            _continuous(recorder)
        for feed in feeds:
            await feed.close()

    run_async(main())


def test_the_stream_stays_capped_at_the_history_size(redis_server):
    async def main():
        import redis.asyncio as aioredis

        [feed] = _feeds(redis_server.url, 1, history=30, warmup=0)
        await _started([feed])
        await until(lambda: feed.last_seq >= 60, what="61 ticks")
        client = aioredis.Redis.from_url(redis_server.url)
        assert await client.xlen(f"{feed.key}:ticks") == 30
        await client.aclose()
        await feed.close()

    run_async(main())


def test_a_killed_leader_is_replaced_within_3_s_and_the_walk_goes_on(redis_server):
    async def main():
        feeds = _feeds(redis_server.url, 3)
        recorders = await _started(feeds)
        await until(lambda: all(len(r.rows) >= 10 for r in recorders), what="10 ticks")
        leader = next(f for f in feeds if f.is_leader)
        await leader.close(release=False)  # the lease is left to expire, as after SIGKILL
        last_before = leader.last_seq
        others = [f for f in feeds if f is not leader]
        await until(lambda: any(f.is_leader for f in others), timeout=5, what="a new leader")
        await until(lambda: all(f.last_seq >= last_before + 20 for f in others), what="ticks")
        for feed, recorder in zip(feeds, recorders, strict=True):
            if feed is not leader:
                seqs = _continuous(recorder)  # no repeated, no skipped sequence number
                assert seqs[-1] >= last_before + 20
                # The market stalled less than 3.5 s: from the old leader's last tick to
                # the new one's first.
                handover = recorder.rows[last_before + 1][0] - recorder.rows[last_before][0]
                assert handover < 3500, f"stalled {handover:.0f} ms"
        # The new leader went on from the state the old one left: prices move by one
        # small step across the handover, no jump back to the start prices.
        rows = recorders[1].rows if feeds[1] is not leader else recorders[0].rows
        moves = [np.abs(np.log(np.array(rows[s + 1][1]) / np.array(rows[s][1]))).max()
                 for s in range(last_before - 5, last_before + 5)]  # fmt: skip
        assert max(moves) < 0.01
        for feed in others:
            await feed.close()

    run_async(main())


def test_a_redis_outage_stalls_the_market_and_an_empty_redis_is_reseeded(redis_server):
    async def main():
        feeds = _feeds(redis_server.url, 2, history=200)
        recorders = await _started(feeds)
        await until(lambda: all(len(r.rows) >= 10 for r in recorders), what="10 ticks")
        redis_server.stop()
        await until(lambda: all(f.stalled for f in feeds), timeout=10, what="stalled")
        held = [f.last_seq for f in feeds]
        await asyncio.sleep(1.0)  # no Redis, no ticks: none invented meanwhile
        assert [f.last_seq for f in feeds] == held
        redis_server.start()  # empty: no persistence
        back = time.monotonic()
        await until(lambda: all(f.last_seq >= max(held) + 10 for f in feeds), timeout=15,
                     what="both following one market again")  # fmt: skip
        assert time.monotonic() - back < 10 + 10 * TICK
        assert not any(f.stalled for f in feeds)
        assert sum(f.is_leader for f in feeds) == 1
        for recorder in recorders:
            _continuous(recorder)
        common = set(recorders[0].rows) & set(recorders[1].rows)
        assert all(recorders[0].rows[s] == recorders[1].rows[s] for s in common)
        for feed in feeds:
            await feed.close()

    run_async(main())


def test_the_leader_runs_a_replay_and_a_new_leader_goes_on_from_its_row(redis_server):
    from finflow_panel.feed.redis_feed import market_key
    from finflow_panel.sim import Replay

    rows = 100.0 + np.arange(120.0)[:, None] + np.array([[0.0, 0.5, 0.25]])
    labels = [f"day {i}" for i in range(len(rows))]

    def replay():
        return Replay(SYMBOLS, rows, labels=labels)

    async def main():
        key = market_key(replay())
        assert key.startswith("finflow:replay:") and key == market_key(replay())
        key = f"test:{uuid.uuid4().hex}"
        feeds = [RedisFeed(replay(), redis_server.url, key=key, tick=TICK / 2, history=500)
                 for _ in range(2)]  # fmt: skip
        recorders = await _started(feeds)
        await until(lambda: all(len(r.rows) >= 10 for r in recorders), what="10 rows")
        leader = next(f for f in feeds if f.is_leader)
        await leader.close(release=False)  # the lease is left to expire, as after SIGKILL
        other = next(f for f in feeds if f is not leader)
        await until(lambda: other.finished, timeout=30, what="the replay's end")
        assert other.is_leader
        recorder = recorders[feeds.index(other)]
        seqs = _continuous(recorder)
        assert seqs == list(range(len(rows)))  # every row once: none skipped or replayed
        for seq in seqs:
            assert recorder.rows[seq][1] == tuple(rows[seq])
        assert other.label(other.last_seq) == labels[-1]
        # The leader, due a tick, publishes nothing after the end.
        other._published_time = 0.0
        await other._tick_when_due()
        assert await other._client.xlen(other._stream_key) == len(rows)
        await other.close()

    run_async(main())
