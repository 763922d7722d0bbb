"""Server processes on one real Redis: one market for all, and a leader's death."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import pytest

from finflow_panel.client import SessionClient
from tests.util import RedisServer, ServerProcess, require_executable, run_async, wait_until

pytestmark = [pytest.mark.server, pytest.mark.redis]


@pytest.fixture
def two_servers(redis_server):
    args = ("--redis", redis_server.url, "--tick", "0.2", "--interval", "0.2",
            "--session-lifetime", "0.5")  # fmt: skip
    servers = [ServerProcess(*args, "--seed", str(i)).start() for i in range(2)]
    wait_until(lambda: sum(s.feed()["leader"] for s in servers) == 1, timeout=15)
    yield servers
    for server in servers:
        server.stop()


async def _rows(server, n):
    client = await SessionClient.open(server.url + "/portfolio")
    await client.pull_doc()
    _, columns = client.chart_source()
    batches = [await client.next_rows(20) for _ in range(n)]
    client.close()
    return columns, batches


def _table(columns, batches, symbols):
    seq = np.concatenate([columns["seq"], *(b.seq for b in batches)])
    time_ = np.concatenate([columns["time"], *(b.time for b in batches)])
    prices = np.column_stack(
        [np.concatenate([columns[s], *(b.columns[s] for b in batches)]) for s in symbols]
    )
    return seq, time_, prices


def test_two_processes_stream_the_same_price_and_time_for_each_tick(two_servers):
    a, b = two_servers
    symbols = a.feed()["symbols"]
    assert b.feed()["symbols"] == symbols

    async def main():
        return await asyncio.gather(_rows(a, 10), _rows(b, 10))

    (cols_a, rows_a), (cols_b, rows_b) = run_async(main())
    seq_a, time_a, prices_a = _table(cols_a, rows_a, symbols)
    seq_b, time_b, prices_b = _table(cols_b, rows_b, symbols)
    common, at_a, at_b = np.intersect1d(seq_a, seq_b, return_indices=True)
    assert len(common) >= 100  # the warm-up history and the live ticks
    np.testing.assert_array_equal(time_a[at_a], time_b[at_b])
    np.testing.assert_array_equal(prices_a[at_a], prices_b[at_b])
    # Each process's /api/feed shows its own subscribers and its part in the market.
    states = [s.feed() for s in two_servers]
    assert all(state["backend"] == "redis" and not state["stalled"] for state in states)
    assert sorted(state["leader"] for state in states) == [False, True]
    assert "redis://" not in str(states)


def test_killing_the_leader_process_hands_the_market_to_the_other(two_servers):
    leader, other = sorted(two_servers, key=lambda s: not s.feed()["leader"])
    assert leader.feed()["leader"] and not other.feed()["leader"]

    async def main():
        client = await SessionClient.open(other.url + "/portfolio")
        await client.pull_doc()
        before = await client.next_rows(20)
        leader.kill()  # SIGKILL: no goodbye, the lease has to expire
        killed = time.monotonic()
        seqs = [before.seq]
        times = [before.time]
        while len(np.concatenate(seqs)) < 40:
            rows = await client.next_rows(20)
            seqs.append(rows.seq)
            times.append(rows.time)
        client.close()
        return killed, np.concatenate(seqs), np.concatenate(times)

    killed, seqs, times = run_async(main())
    np.testing.assert_array_equal(seqs, np.arange(seqs[0], seqs[0] + len(seqs)))
    assert np.diff(times).max() < 3500  # the market stalled less than 3.5 s
    wait_until(lambda: other.feed()["leader"], timeout=1)
    assert time.monotonic() - killed < 30


def _status_stalled(doc: dict) -> bool:
    """``feed_stalled`` of the page's connection indicator, in a pulled document."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            attributes = node.get("attributes", {})
            if attributes.get("class_name") == "ConnectionStatus":
                found.append(attributes["data"]["attributes"]["feed_stalled"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    [stalled] = found
    return stalled


def test_pages_open_while_redis_is_down_and_say_the_feed_stalled(two_servers, redis_server):
    a, _ = two_servers
    redis_server.stop()

    async def main():
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, lambda: wait_until(lambda: a.feed()["stalled"]))
            client = await SessionClient.open(a.url + "/portfolio", timeout=10)
            await client.pull_doc(timeout=10)  # never waits on Redis
            _, columns = client.chart_source()
            assert len(columns["seq"]) >= 100  # what the process holds
            assert _status_stalled(client.doc) is True
        finally:
            await loop.run_in_executor(None, redis_server.start)
        deadline = time.monotonic() + 20
        while True:
            message = await client.next_patch(timeout=deadline - time.monotonic())
            events = message.content.get("events", [])
            if any(e.get("attr") == "feed_stalled" and e.get("new") is False for e in events):
                break  # the page is told the feed is back
        client.close()

    run_async(main())
    wait_until(lambda: not any(s.feed()["stalled"] for s in two_servers), timeout=15)
    before = a.feed()["last_seq"]
    wait_until(lambda: a.feed()["last_seq"] > before + 5, timeout=15)


def test_num_procs_processes_on_one_port_show_one_market(redis_server):
    server = ServerProcess(
        "--redis", redis_server.url, "--num-procs", "2", "--tick", "0.2", "--interval", "0.2"
    ).start()
    try:
        seen = set()
        wait_until(lambda: seen.add(server.feed()["process"]) or seen == {0, 1}, timeout=30)

        async def main():
            return await asyncio.gather(*[_rows(server, 6) for _ in range(6)])

        sessions = run_async(main())
        # Each page's GET and websocket may reach different processes, each building it.
        built = {}

        def both_counted():
            status = server.feed()
            built[status["process"]] = status["sessions_built"]
            return len(built) == 2

        wait_until(both_counted, timeout=30)
        assert 6 <= sum(built.values()) <= 12
        symbols = server.feed()["symbols"]
        tables = [_table(columns, batches, symbols) for columns, batches in sessions]
        by_seq: dict[int, tuple] = {}
        for seq, time_, prices in tables:
            for i, s in enumerate(seq.tolist()):
                row = (time_[i], tuple(prices[i]))
                assert by_seq.setdefault(s, row) == row, f"two prices for tick {s}"
        assert len(by_seq) >= 120
    finally:
        server.stop()


def test_a_refused_login_is_one_line_and_exit_code_2():
    server = RedisServer(require_executable("redis-server"), password="s3cret").start()
    try:
        for url, message in [
            (f"redis://:wrong@127.0.0.1:{server.port}/0", "refused the login"),
            (f"redis://127.0.0.1:{server.port}/0", "refused the login"),  # no password
        ]:
            result = subprocess.run(
                [sys.executable, "-m", "finflow_panel.cli", "serve", "--redis", url],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 2
            [line] = result.stderr.strip().splitlines()
            assert message in line and "wrong" not in line, line
    finally:
        server.stop()
