"""JSON API benchmark: N clients of ``/ws/portfolio/`` on one server process.

For each N it starts a fresh ``finflow-panel serve`` (1 s ticks), opens N connections
that each send ``start_updates`` with a 1 s interval (as a phone app would), and reads
every ``price_update`` for a window. It prints the share of ticks delivered to every
client, p50/p99 tick-to-receive latency (the update's ``timestamp`` to its arrival), the
server's CPU % and RSS per connection. With ``--dashboard`` the same sizes run as
dashboard sessions too (bench_fanout's lean Bokeh clients), for figures side by side.

Run: .venv/bin/python benchmarks/bench_json.py [--clients 100,1000] [--window 30]
     [--dashboard]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_fanout import BAR_DELIVERED, BAR_P99_MS  # noqa: E402
from benchmarks.bench_fanout import run as run_fanout  # noqa: E402
from finflow_panel.client import portfolio_ws_url  # noqa: E402

#: seq and timestamp of an update, read without parsing its holdings (the client is the
#: measuring instrument: it must keep up with every connection's messages).
_HEAD = re.compile(r'"seq":(\d+),"timestamp":([0-9.e+]+)')


async def _client_shard(url: str, n: int, concurrency: int, conn) -> None:
    from tornado.websocket import websocket_connect

    chunks: list[tuple[int, float, float]] = []
    semaphore = asyncio.Semaphore(2 * concurrency)

    async def follow(ws):
        while True:
            frame = await ws.read_message()
            if frame is None:
                return
            received = time.time() * 1000.0
            match = _HEAD.search(frame)
            if match and frame.startswith('{"type":"price_update"'):
                chunks.append((int(match.group(1)), float(match.group(2)), received))

    async def open_one():
        async with semaphore:
            ws = await websocket_connect(url)
            hello = json.loads(await ws.read_message())
            assert hello["type"] == "connection_established", hello
            await ws.write_message('{"type":"start_updates","interval":1}')
            return ws

    opened = time.monotonic()
    sockets = await asyncio.gather(*[open_one() for _ in range(n)])
    readers = [asyncio.ensure_future(follow(ws)) for ws in sockets]
    gc.collect()
    gc.freeze()
    conn.send(time.monotonic() - opened)
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
    for ws in sockets:
        ws.close()
    for reader in readers:
        reader.cancel()
    conn.send(np.array(chunks, dtype=np.float64).reshape(-1, 3).tobytes())


def _client_process(url: str, n: int, concurrency: int, conn, cookies=None) -> None:
    asyncio.run(_client_shard(portfolio_ws_url(url), n, concurrency, conn))


def run(n: int, window: float, warmup: float, shards: int) -> dict:
    """bench_fanout's run, with JSON API clients instead of dashboard sessions."""
    return {
        **run_fanout("json", n, window, warmup, shards, _client_process, "/ws/portfolio/"),
        "kind": "json",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="100,1000")
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--dashboard", action="store_true", help="also run the sizes as dashboard sessions"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.clients.split(",")]
    print(f"JSON API at 1 s ticks and 1 s updates, {args.window:.0f} s window, "
          f"{os.cpu_count()} cores, {args.client_processes} client processes",
          flush=True)  # fmt: skip
    print(f"{'client':<10}{'n':>6}{'open s':>8}{'ticks/s':>8}{'upd/s':>9}{'delivered':>10}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'srv CPU%':>9}{'cli CPU%':>9}{'RSS/conn':>10}",
          flush=True)  # fmt: skip
    runs = [("json", n) for n in sizes]
    if args.dashboard:
        runs += [("dashboard", n) for n in sizes]
    for kind, n in runs:
        if kind == "json":
            r = run(n, args.window, args.warmup, args.client_processes)
        else:
            r = run_fanout("finflow", n, args.window, args.warmup, args.client_processes)
        ok = r["delivered"] >= BAR_DELIVERED and r["p99"] < BAR_P99_MS
        print(f"{kind:<10}{n:>6}{r['open_s']:>8.1f}{r['tick_rate']:>8.2f}"
              f"{r['updates_per_s']:>9.1f}{r['delivered'] * 100:>9.1f}%{r['p50']:>9.1f}"
              f"{r['p99']:>9.1f}{r['cpu']:>9.1f}{r['client_cpu']:>9.1f}"
              f"{r['rss_per_session_kb']:>7.0f} kB{'  meets bar' if ok else ''}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
