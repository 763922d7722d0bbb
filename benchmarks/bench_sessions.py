"""Session benchmark: what opening a dashboard costs, a join storm, and first paint.

1. Open cost: 30 sessions opened one after another (each stays open; the dashboard's
   market ticks at 1 s), server CPU per session read before and after each, for the
   dashboard and for a minimal Panel template page with one 3-line figure
   (benchmarks/reference_page.py) in the same run; medians and their ratio.
2. Join storm: N sessions open and streaming at 1 s ticks, then M newcomers open at
   concurrency C. For the open sessions during the storm: the share of ticks delivered,
   p99 tick-to-receive latency and sequence gaps; for the newcomers: time from request to
   their first live update.
3. First paint: Chromium (Debian's, via Playwright) navigates to the dashboard on an idle
   server; time from navigation start to the first streamed update reaching the page,
   on the page's own clock (and, for comparison, as the Python test driver saw it).

Figures are printed, never asserted.
Run: .venv/bin/python benchmarks/bench_sessions.py [--open 30] [--storm 30,100,20]
     [--paint 5] [--paint-baseline GIT_REF] [--only open,storm,paint]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finflow_panel.client import SessionClient  # noqa: E402

STORM_BAR = {"delivered": 0.95, "p99_ms": 1000.0, "live_s": 60.0}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(kind: str, cwd: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Serve ``kind``; ``cwd``: a checkout whose ``finflow_panel`` to serve instead."""
    port = free_port()
    common = ["--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}"]
    if kind == "dashboard":
        cmd = [sys.executable, "-m", "finflow_panel.cli", "serve", "--tick", "1",
               "--interval", "1", *common]  # fmt: skip
        url, ready = f"http://127.0.0.1:{port}/portfolio", f"http://127.0.0.1:{port}/api/feed"
    else:
        app = str(ROOT / "benchmarks" / "reference_page.py")
        cmd = [sys.executable, "-m", "panel", "serve", app, *common]
        url = ready = f"http://127.0.0.1:{port}/reference_page"
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd or ROOT
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(ready, timeout=5):
                return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{kind} server did not start") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def open_cost(kind: str, n: int, warm: int = 5, cwd: Path | None = None) -> dict:
    """Median server CPU (ms) to open one session, and the pulled document's size."""
    process, url = start(kind, cwd)
    proc = psutil.Process(process.pid)
    clients, costs = [], []
    try:
        for i in range(warm + n):
            before = cpu(proc)
            client = await SessionClient.open(url)
            await client.pull_doc()
            # Let the session's own follow-up (document_ready, first update) settle.
            await asyncio.sleep(0.3)
            if i >= warm:
                costs.append((cpu(proc) - before) * 1000.0)
            clients.append(client)
        doc_kb = len(repr(clients[-1].doc)) / 1024
        rss_kb = proc.memory_info().rss / 1024
        return {"kind": kind, "cpu_ms": statistics.median(costs), "doc_kb": doc_kb,
                "rss_kb": rss_kb}  # fmt: skip
    finally:
        for client in clients:
            client.close()
        stop(process)


async def storm(open_n: int, newcomers: int, concurrency: int) -> dict:
    process, url = start("dashboard")
    try:
        settled = [await _opened(url) for _ in range(open_n)]
        received: list[list] = [[] for _ in settled]  # per open session: (seq, latency ms)
        recording = {"on": False}

        async def read(i, client):
            while True:
                try:
                    message = await client.next_patch(timeout=3600)
                except (ConnectionError, asyncio.CancelledError):
                    return
                for rows in client.streamed(message):
                    if recording["on"] and "seq" in rows.columns:
                        latency = message.received * 1000.0 - rows.time
                        received[i].extend(zip(rows.seq.tolist(), latency.tolist(), strict=True))

        readers = [asyncio.ensure_future(read(i, c)) for i, c in enumerate(settled)]
        await asyncio.sleep(5)
        seq_before = _last_seq(url)
        recording["on"] = True
        started = time.monotonic()
        gate = asyncio.Semaphore(concurrency)

        async def newcomer():
            async with gate:
                t0 = time.monotonic()
                client = await SessionClient.open(url, timeout=300)
                await client.pull_doc(timeout=300)
                await client.next_rows(timeout=300)
                return client, time.monotonic() - t0

        arrived = await asyncio.gather(*[newcomer() for _ in range(newcomers)])
        storm_s = time.monotonic() - started
        seq_after = _last_seq(url)
        await asyncio.sleep(3)  # updates of ticks made in the storm still on their way
        recording["on"] = False
        for reader in readers:
            reader.cancel()
        ticks = seq_after - seq_before
        delivered, latencies, gaps = 0, [], 0
        for rows in received:
            seqs = np.array([s for s, _ in rows], dtype=np.int64)
            if len(seqs) > 1:
                gaps += int((np.diff(seqs) != 1).sum())
            in_storm = (seqs > seq_before) & (seqs <= seq_after)
            delivered += int(in_storm.sum())
            latencies.extend(np.array([lat for _, lat in rows])[in_storm].tolist())
        live = sorted(seconds for _, seconds in arrived)
        for client in settled + [c for c, _ in arrived]:
            client.close()
        return {
            "storm_s": storm_s,
            "tick_rate": ticks / storm_s,
            "delivered": delivered / max(1, open_n * ticks),
            "p99_ms": float(np.percentile(latencies, 99)) if latencies else float("nan"),
            "gaps": gaps,
            "live_p50_s": live[len(live) // 2],
            "live_max_s": live[-1],
        }
    finally:
        stop(process)


async def _opened(url: str) -> SessionClient:
    client = await SessionClient.open(url)
    await client.pull_doc()
    return client


def _last_seq(page_url: str) -> int:
    import json

    feed = page_url.rsplit("/", 1)[0] + "/api/feed"
    with urllib.request.urlopen(feed, timeout=30) as response:
        return json.loads(response.read())["last_seq"]


#: Stamps, in the page, when the first streamed update arrives (ms after navigation
#: started, the page's own clock), before any of the page's scripts run.
_STAMP_FIRST_UPDATE = """
window.__firstUpdate = null;
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const ws = new Native(...args);
  ws.addEventListener("message", (event) => {
    if (window.__firstUpdate === null && typeof event.data === "string"
        && event.data.includes("ColumnsStreamed")) {
      window.__firstUpdate = performance.now();
    }
  });
  return ws;
};
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, Native);
"""


def first_paint(tries: int = 5, cwd: Path | None = None) -> list[tuple[float, float]] | None:
    """Per navigation: seconds from navigation start to the first streamed update
    arriving in the page (the page's clock), and as the test driver saw it (from the
    ``goto`` call to the driver hearing of the frame, which adds its own overhead)."""
    executable = shutil.which("chromium")
    if executable is None:
        return None
    from playwright.sync_api import sync_playwright

    process, url = start("dashboard", cwd)
    times = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
            )
            for _ in range(tries + 1):  # the first warms the server's and browser's caches
                page = browser.new_page()
                page.add_init_script(_STAMP_FIRST_UPDATE)
                seen = {}

                def on_ws(ws, seen=seen):
                    def frame(payload, seen=seen):
                        if "ColumnsStreamed" in str(payload) and "t" not in seen:
                            seen["t"] = time.perf_counter()

                    ws.on("framereceived", frame)

                page.on("websocket", on_ws)
                t0 = time.perf_counter()
                page.goto(url)
                page.wait_for_function("window.__firstUpdate !== null", timeout=30_000)
                in_page = page.evaluate("window.__firstUpdate") / 1000.0
                deadline = time.monotonic() + 30
                while "t" not in seen and time.monotonic() < deadline:
                    page.wait_for_timeout(20)
                times.append((in_page, seen.get("t", float("nan")) - t0))
                page.close()
            browser.close()
    finally:
        stop(process)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=30, help="sessions opened per page kind")
    parser.add_argument("--storm", default="30,100,20", help="open,newcomers,concurrency")
    parser.add_argument("--paint", type=int, default=5, help="Chromium navigations")
    parser.add_argument(
        "--paint-baseline",
        default=None,
        metavar="GIT_REF",
        help="also time first paint of this commit's dashboard, alternating with this one",
    )
    parser.add_argument(
        "--open-baseline",
        default=None,
        metavar="GIT_REF",
        help="also measure this commit's dashboard's open cost, alternating with this one",
    )
    parser.add_argument("--only", default="open,storm,paint", help="parts to run")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(f"sessions benchmark, {os.cpu_count()} cores", flush=True)
    if "open" in parts:
        report_open_cost(args.open, args.open_baseline)
    if "storm" in parts:
        report_storm(args.storm)
    if "paint" in parts:
        report_first_paint(args.paint, args.paint_baseline)


def report_open_cost(n: int, baseline: str | None = None) -> None:
    if baseline is not None:
        report_open_against(n, baseline)
        return
    dash = asyncio.run(open_cost("dashboard", n))
    ref = asyncio.run(open_cost("reference", n))
    print(f"open cost (median of {n}, server CPU per session):")
    for r in (dash, ref):
        print(f"  {r['kind']:<10} {r['cpu_ms']:7.1f} ms   document {r['doc_kb']:5.1f} kB")
    print(f"  dashboard / reference: {dash['cpu_ms'] / ref['cpu_ms']:.2f}", flush=True)


def report_open_against(n: int, baseline: str, rounds: int = 3) -> None:
    """This checkout's dashboard against ``baseline``'s, alternating ``rounds`` times
    (the machine's speed drifts between runs), each round ``n`` sessions."""
    with _worktree(baseline) as tree:
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(asyncio.run(open_cost("dashboard", n)))
            theirs.append(asyncio.run(open_cost("dashboard", n, cwd=tree)))
    print(f"open cost (median of {n} per round, {rounds} rounds alternating, server CPU):")
    for label, runs in (("this checkout", ours), (f"baseline {baseline}", theirs)):
        costs = " ".join(f"{r['cpu_ms']:.0f}" for r in runs)
        print(f"  {label:<22} {statistics.median(r['cpu_ms'] for r in runs):7.1f} ms "
              f"(rounds: {costs})   document {runs[-1]['doc_kb']:5.1f} kB")  # fmt: skip
    ratio = statistics.median(r["cpu_ms"] for r in ours) / statistics.median(
        r["cpu_ms"] for r in theirs
    )
    print(f"  this checkout / baseline: {ratio:.2f}", flush=True)


@contextlib.contextmanager
def _worktree(ref: str):
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(tree), ref], check=True,
                       capture_output=True)  # fmt: skip
        try:
            yield tree
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)


def report_storm(spec: str) -> None:
    open_n, newcomers, concurrency = (int(x) for x in spec.split(","))
    s = asyncio.run(storm(open_n, newcomers, concurrency))
    ok = (s["delivered"] >= STORM_BAR["delivered"] and s["p99_ms"] < STORM_BAR["p99_ms"]
          and s["gaps"] == 0 and s["live_max_s"] < STORM_BAR["live_s"])  # fmt: skip
    print(f"join storm: {open_n} open at 1 s ticks, {newcomers} newcomers {concurrency} at a "
          f"time, {s['storm_s']:.1f} s")  # fmt: skip
    print(
        f"  open sessions: {s['delivered'] * 100:.1f}% of ticks delivered, p99 "
        f"{s['p99_ms']:.0f} ms, {s['gaps']} gaps; market {s['tick_rate']:.2f} ticks/s"
    )
    print(f"  newcomers live: p50 {s['live_p50_s']:.1f} s, slowest {s['live_max_s']:.1f} s"
          f"{'  meets bar' if ok else ''}", flush=True)  # fmt: skip


def report_first_paint(tries: int, baseline: str | None = None) -> None:
    if shutil.which("chromium") is None:
        print("first paint: chromium not on PATH, not measured")
        return
    if baseline is None:
        _print_paint("this checkout", first_paint(tries))
        return
    # The machine's speed drifts between runs: compare with the baseline commit in the
    # same run, alternating, from a temporary worktree of it.
    with _worktree(baseline) as tree:
        ours, theirs = [], []
        for _ in range(2):
            ours += first_paint(tries)
            theirs += first_paint(tries, cwd=tree)
    _print_paint("this checkout", ours)
    _print_paint(f"baseline {baseline}", theirs)
    ratio = statistics.median(t for t, _ in ours) / statistics.median(t for t, _ in theirs)
    print(f"  this checkout / baseline: {ratio:.2f}", flush=True)


def _print_paint(label: str, paint: list[tuple[float, float]]) -> None:
    page, driver = ([t[i] for t in paint] for i in (0, 1))
    print(f"first live update in Chromium after navigation, {label}: median "
          f"{statistics.median(page):.2f} s (of {len(page)}: "
          f"{', '.join(f'{t:.2f}' for t in page)}); as the test driver saw it: "
          f"median {statistics.median(driver):.2f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
