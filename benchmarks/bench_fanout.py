"""Fan-out benchmark: N protocol-level sessions on one server process.

For each N it starts a fresh server, opens N sessions that speak Bokeh's WebSocket
protocol (as a browser does, without rendering), lets them stream for a window and prints
delivered updates/s, the share of ticks delivered, p50/p99 tick-to-receive latency, the
server's CPU % and RSS per session. The baseline - the Panel docs' per-session
``pn.state.add_periodic_callback`` app (benchmarks/baseline_app.py) - runs in the same
invocation with the same client.

Run: .venv/bin/python benchmarks/bench_fanout.py [--sessions 10,100,500,1000] [--window 30]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finflow_panel.client import SessionClient  # noqa: E402

BAR_DELIVERED, BAR_P99_MS = 0.99, 250.0
#: How long after the window a tick made in it may still arrive and count as delivered.
GRACE_S = 5.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Bokeh's default unused-session lifetime. Much shorter, and a page whose websocket
#: arrives late (16 opens in flight at ~0.5 s of server CPU each) is discarded as unused
#: and built again on connect, which measures the benchmark's own churn.
SESSION_LIFETIME_S = 15


def start_server(kind: str, port: int) -> subprocess.Popen:
    common = ["--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}"]
    if kind == "finflow":
        cmd = [sys.executable, "-m", "finflow_panel.cli", "serve", "--tick", "1", "--interval",
               "1", "--session-lifetime", str(SESSION_LIFETIME_S), *common]  # fmt: skip
        ready = f"http://127.0.0.1:{port}/api/feed"
    else:
        app = str(ROOT / "benchmarks/baseline_app.py")
        ms = str(SESSION_LIFETIME_S * 1000)
        lifetime = ["--unused-session-lifetime", ms, "--check-unused-sessions", ms]
        cmd = [sys.executable, "-m", "panel", "serve", app, *lifetime, *common]
        ready = f"http://127.0.0.1:{port}/baseline_app"
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(ready, timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{kind} server did not start") from None
            time.sleep(0.2)
    return process


def feed_seq(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())["last_seq"]


async def run(kind: str, n: int, window: float, warmup: float) -> dict:
    port = free_port()
    server = start_server(kind, port)
    proc = psutil.Process(server.pid)
    route = "/portfolio" if kind == "finflow" else "/baseline_app"
    url = f"http://127.0.0.1:{port}{route}"
    try:
        rss_before = proc.memory_info().rss
        semaphore = asyncio.Semaphore(16)
        recording = {"on": False}
        received = []  # (seq, tick time ms, latency ms) of every row while recording
        messages = [0]
        readers = []

        async def open_one():
            async with semaphore:
                client = await SessionClient.open(url, timeout=120)
                await client.pull_doc(timeout=120)
                client.doc = None  # the pulled document is not needed any more
                # Read from the start: updates left unread while hundreds of sessions
                # open pile up in socket buffers, and draining them later reads as
                # seconds of latency in the window.
                readers.append(asyncio.ensure_future(read(client)))
                return client

        async def read(client):
            while True:
                try:
                    message = await client.next_patch(timeout=3600)
                except (ConnectionError, asyncio.CancelledError):
                    return
                if not recording["on"]:
                    continue
                for batch in client.streamed(message):
                    if "seq" in batch.columns:
                        messages[0] += 1
                        latency = message.received * 1000.0 - batch.time
                        received.extend(
                            zip(batch.seq.tolist(), batch.time.tolist(), latency, strict=True)
                        )

        opened = time.monotonic()
        clients = await asyncio.gather(*[open_one() for _ in range(n)])
        open_seconds = time.monotonic() - opened
        # The client is the measuring instrument: its own full garbage collections over
        # a thousand sessions' objects paused it for ~250 ms, which read as latency.
        gc.collect()
        gc.freeze()
        await asyncio.sleep(warmup)
        rss_open = proc.memory_info().rss
        cpu_before = sum(proc.cpu_times()[:2])
        me = psutil.Process()
        my_cpu_before = sum(me.cpu_times()[:2])
        feed_url = f"http://127.0.0.1:{port}/api/feed"
        seq_before = feed_seq(feed_url) if kind == "finflow" else None
        recording["on"] = True
        started, window_start_ms = time.monotonic(), time.time() * 1000.0
        await asyncio.sleep(window)
        elapsed = time.monotonic() - started
        window_end_ms = time.time() * 1000.0
        seq_after = feed_seq(feed_url) if kind == "finflow" else None
        cpu = (sum(proc.cpu_times()[:2]) - cpu_before) / elapsed * 100
        client_cpu = (sum(me.cpu_times()[:2]) - my_cpu_before) / elapsed * 100
        # Rows of ticks made in the window count if they arrive within GRACE_S after it.
        await asyncio.sleep(GRACE_S)
        recording["on"] = False
        for reader in readers:
            reader.cancel()
        for client in clients:
            client.close()
        rows = np.array(received).reshape(-1, 3)
        if kind == "finflow":
            # Every session should receive every tick the shared market made in the window.
            in_window = (rows[:, 0] > seq_before) & (rows[:, 0] <= seq_after)
            ticks = seq_after - seq_before
        else:
            # The baseline's sessions each make their own tick, one a second.
            in_window = (rows[:, 1] >= window_start_ms) & (rows[:, 1] < window_end_ms)
            ticks = (window_end_ms - window_start_ms) / 1000.0
        lat = rows[in_window, 2] if in_window.any() else np.array([np.nan])
        return {
            "kind": kind,
            "n": n,
            "open_s": open_seconds,
            "updates_per_s": messages[0] / (elapsed + GRACE_S),
            "delivered": int(in_window.sum()) / (n * ticks),
            "tick_rate": ticks / elapsed,
            "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)),
            "cpu": cpu,
            "client_cpu": client_cpu,
            "rss_per_session_kb": (rss_open - rss_before) / n / 1024,
        }
    finally:
        gc.unfreeze()
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="10,100,500,1000")
    parser.add_argument("--baseline-sessions", default=None, help="default: same as --sessions")
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sessions.split(",")]
    baseline_sizes = [int(s) for s in (args.baseline_sessions or args.sessions).split(",")]

    columns = [("app", "<9"), ("sessions", ">9"), ("open s", ">8"), ("ticks/s", ">8"),
               ("upd/s", ">9"), ("delivered", ">10"), ("p50 ms", ">9"), ("p99 ms", ">9"),
               ("srv CPU%", ">9"), ("cli CPU%", ">9"), ("RSS/sess", ">10")]  # fmt: skip
    header = "".join(f"{name:{align}}" for name, align in columns)
    print(f"fan-out at 1 s ticks and 1 s update interval, {args.window:.0f} s window, "
          f"{os.cpu_count()} cores", flush=True)  # fmt: skip
    print(header, flush=True)
    results = []
    for kind, ns in (("baseline", baseline_sizes), ("finflow", sizes)):
        for n in ns:
            r = asyncio.run(run(kind, n, args.window, args.warmup))
            results.append(r)
            ok = r["delivered"] >= BAR_DELIVERED and r["p99"] < BAR_P99_MS
            print(f"{kind:<9}{n:>9}{r['open_s']:>8.1f}{r['tick_rate']:>8.2f}"
                  f"{r['updates_per_s']:>9.1f}"
                  f"{r['delivered'] * 100:>9.1f}%{r['p50']:>9.1f}{r['p99']:>9.1f}"
                  f"{r['cpu']:>9.1f}{r['client_cpu']:>9.1f}{r['rss_per_session_kb']:>7.0f} kB"
                  f"{'  meets bar' if ok else ''}", flush=True)  # fmt: skip

    def best(kind):
        passing = [r["n"] for r in results if r["kind"] == kind
                   and r["delivered"] >= BAR_DELIVERED and r["p99"] < BAR_P99_MS]  # fmt: skip
        return max(passing, default=0)

    base, ours = best("baseline"), best("finflow")
    ratio = f"{ours / base:.1f}x" if base else "n/a (baseline met the bar at no size)"
    print(f"largest N meeting >=99% delivered and p99 < 250 ms: baseline {base}, "
          f"finflow {ours} ({ratio})")  # fmt: skip


if __name__ == "__main__":
    main()
