"""The real server, checked with a client that speaks Bokeh's WebSocket protocol."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tornado.httpclient import AsyncHTTPClient

from finflow_panel.client import SessionClient
from finflow_panel.ui.components import BUNDLE
from tests.util import ServerProcess, run_async, wait_until

pytestmark = pytest.mark.server


async def _session(server, route="/portfolio") -> tuple[SessionClient, dict]:
    client = await SessionClient.open(server.url + route)
    await client.pull_doc()
    _, columns = client.chart_source()
    return client, columns


def _holdings_shown(client: SessionClient) -> dict[str, float]:
    """Symbol -> quantity of the holdings table in a pulled document."""
    table = client.find_model(lambda m: {"symbols", "quantities", "names"} <= set(m["attributes"]))
    return dict(zip(table["attributes"]["symbols"], table["attributes"]["quantities"], strict=True))


async def _rows_until(client: SessionClient, predicate, timeout=20.0):
    """Collect streamed rows until ``predicate(list_of_rows)`` holds."""
    collected = []
    deadline = time.monotonic() + timeout
    while not predicate(collected):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"condition not met within {timeout} s ({len(collected)} rows)")
        collected.append(await client.next_rows(remaining))
    return collected


def test_new_session_draws_history_and_every_tick_follows(server):
    async def main():
        client, columns = await _session(server)
        assert len(columns["seq"]) >= 100  # warm-up history, drawn at once
        # Every symbol the market quotes: a portfolio's value is worked out in the browser.
        assert set(columns) == {"time", "seq", *server.feed()["symbols"]}
        assert {"AAPL", "MSFT", "GOOGL"} <= set(columns)
        batches = await _rows_until(client, lambda rows: len(rows) >= 5)
        client.close()
        seqs = np.concatenate([columns["seq"], *(b.seq for b in batches)])
        # Every tick reaches the chart, in order, without gaps or repeats.
        np.testing.assert_array_equal(seqs, np.arange(seqs[0], seqs[0] + len(seqs)))
        times = np.concatenate([b.time for b in batches])
        assert (np.diff(times) > 0).all()
        assert all(b.rollover == 2000 for b in batches)

    run_async(main())


def test_one_patch_doc_per_update(server):
    async def main():
        client, _ = await _session(server)
        messages = [await client.next_patch() for _ in range(5)]
        client.close()
        for message in messages:
            kinds = [event["kind"] for event in message.content["events"]]
            # The chart rows are the whole update: KPIs, holdings and diagnostics are
            # derived from them in the browser.
            assert kinds == ["ColumnsStreamed"], kinds
            # A tick or two travels as JSON inside the message, without binary frames.
            assert message.header.get("num_buffers", 0) == 0

    run_async(main())


def test_updates_are_shared_between_sessions_holding_the_same_rows(server):
    async def main():
        before = server.feed()["deliveries"].get("shared", 0)
        (a, _), (b, _) = await asyncio.gather(_session(server), _session(server))
        for client in (a, b):
            await _rows_until(client, lambda rows: len(rows) >= 6)
            client.close()
        # Most updates are written straight to the websockets (the fan-out's own route);
        # one now and then is handed to Bokeh when the session is busy at that moment
        # (seen: 1 in 6). This fails if the Bokeh/Tornado internals it relies on change.
        assert server.feed()["deliveries"].get("shared", 0) - before >= 8

    run_async(main())


def test_open_diagnostics_receive_the_server_figures(server):
    async def main():
        client, _ = await _session(server)
        panel = client.find_model(lambda n: n.get("name", "").startswith("Diagnostics"))
        await client.set_property(panel["id"], "open", True)
        deadline = time.monotonic() + 20
        while True:
            message = await client.next_patch(deadline - time.monotonic())
            changes = [
                e["new"] for e in message.content["events"]
                if e.get("kind") == "ModelChanged" and e.get("attr") == "server"
            ]  # fmt: skip
            if changes:
                break
        client.close()
        figures = _decode_map(changes[0])
        assert figures["subscribers"] >= 1 and figures["last_seq"] >= 0

    run_async(main())


def _decode_map(value):
    if isinstance(value, dict) and value.get("type") == "map":
        return {k: _decode_map(v) for k, v in value["entries"]}
    return value


def test_two_sessions_see_one_market(server):
    async def main():
        (a, _), (b, _) = await asyncio.gather(_session(server), _session(server))
        rows_a, rows_b = await asyncio.gather(
            _rows_until(a, lambda rows: sum(len(r.seq) for r in rows) >= 5),
            _rows_until(b, lambda rows: sum(len(r.seq) for r in rows) >= 5),
        )
        a.close()
        b.close()

        def by_seq(batches):
            out = {}
            for batch in batches:
                for i, seq in enumerate(batch.seq):
                    out[int(seq)] = tuple(batch.columns[s][i] for s in ("AAPL", "NVDA", "KO"))
            return out

        seen_a, seen_b = by_seq(rows_a), by_seq(rows_b)
        common = sorted(set(seen_a) & set(seen_b))
        assert len(common) >= 3
        for seq in common:
            assert seen_a[seq] == seen_b[seq]

    run_async(main())


def test_stop_silences_one_session_and_start_backfills_the_gap(server):
    async def main():
        (a, _), (b, _) = await asyncio.gather(_session(server), _session(server))
        await a.next_rows()
        last_before_stop = None

        await a.click("Stop")
        # Rows already in flight when Stop was clicked may still arrive; take them.
        stopped_at = server.feed()["last_seq"]

        async def drain_a():
            nonlocal last_before_stop
            seqs = []
            try:
                while True:
                    rows = await a.next_rows(timeout=60)
                    seqs.extend(rows.seq.tolist())
            except asyncio.CancelledError:
                return seqs

        drain = asyncio.ensure_future(drain_a())
        # Meanwhile b keeps streaming: wait for 20 ticks past the Stop.
        await _rows_until(b, lambda rows: rows and rows[-1].seq[-1] >= stopped_at + 20)
        drain.cancel()
        late = await drain
        assert all(seq <= stopped_at + 1 for seq in late), late
        assert server.feed()["subscribers"] == 2

        await a.click("Start")
        message = await a.next_patch()
        while not a.streamed(message):
            message = await a.next_patch()
        [resumed] = a.streamed(message)
        a.close()
        b.close()
        last_seen = max(late) if late else None
        assert len(resumed.seq) >= 19  # the missed ticks, in one stream call
        assert message.header["num_buffers"] >= 3  # a big batch travels as binary arrays
        if last_seen is not None:
            assert resumed.seq[0] == last_seen + 1
        np.testing.assert_array_equal(np.diff(resumed.seq), 1)

    run_async(main())


def test_closed_sessions_release_their_subscription(server):
    async def main():
        clients = [c for c, _ in await asyncio.gather(*[_session(server) for _ in range(3)])]
        wait_until(lambda: server.feed()["subscribers"] == 3, timeout=20)
        assert server.feed()["timer_running"]
        for client in clients:
            client.close()

    run_async(main())
    status = wait_until(
        lambda: (s := server.feed())["subscribers"] == 0 and not s["timer_running"] and s,
        timeout=30,
    )
    assert status["subscribers"] == 0


def test_two_hundred_sessions_leave_nothing_behind(server):
    async def round_of(n, batch=25):
        for _ in range(0, n, batch):
            sessions = await asyncio.gather(*[_session(server) for _i in range(batch)])
            for client, _ in sessions:
                client.close()

    def settled():
        # Nothing asks the server to collect: its own reclaim runs within ~20 s.
        status = server.feed()
        quiet = status["subscribers"] == 0 and not status["timer_running"]
        return quiet and status["live_dashboards"] == 0 and status

    # Warm up caches, lazy imports and the allocator's pools with the same concurrency.
    run_async(round_of(100))
    start = wait_until(settled, timeout=60)
    rss_start = start["rss_bytes"]
    run_async(round_of(200))
    # No subscriber, no running timer and no dashboard object left behind...
    end = wait_until(settled, timeout=60)
    rss_end = end["rss_bytes"]
    # A build per page at least (more where a websocket came after its unused session
    # had already been discarded: this fixture keeps them only 0.5 s).
    assert end["sessions_built"] - start["sessions_built"] >= 200
    growth_mb = (rss_end - rss_start) / 2**20
    # ...and no growing memory. A session holds about 1.6 MB while open, so 200 leaked
    # sessions would add ~300 MB; the allocator's own drift stays within tens of MB.
    assert growth_mb < 50, (
        f"RSS after warm-up {rss_start / 2**20:.1f} MB, after 200 more sessions "
        f"{rss_end / 2**20:.1f} MB"
    )


def test_panel_serve_on_the_app_module_with_environment_options():
    import finflow_panel.app as app_module

    process = ServerProcess(
        "--allow-websocket-origin",
        "*",
        cmd=[sys.executable, "-m", "panel", "serve", app_module.__file__],
        env={"FINFLOW_TICK": "0.2", "FINFLOW_INTERVAL": "0.2", "FINFLOW_SEED": "3"},
    ).start(ready_path="/app")

    async def main():
        client, columns = await _session(process, route="/app")
        rows = await client.next_rows()
        client.close()
        assert rows.seq[0] == columns["seq"][-1] + 1

    try:
        run_async(main())
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0"], "--interval: must be between 0.1 and 60 s, got 0"),
        (["--interval", "61"], "--interval: must be between 0.1 and 60 s"),
        (["--history", "-1"], "--history: must be between 1 and 10,000,000, got -1"),
        (["--history", "20000000"], "--history: must be between 1 and 10,000,000"),
        (["--tick", "abc"], "--tick: 'abc' is not a number"),
        (["--port", "70000"], "--port: must be between 0 and 65535"),
        (["--portfolio", "missing.csv"], "missing.csv: cannot read portfolio file"),
        (["--universe", "missing.csv"], "missing.csv: cannot read universe file"),
        (["--num-procs", "2"], "--num-procs 2 needs --redis URL"),
        (["--redis", "http://a:secret@x"], "bad Redis URL 'http://a:***@x'"),
        (
            ["--redis", "redis://u:secret@127.0.0.1:1/0"],
            "cannot connect to Redis at redis://u:***@",
        ),
    ],
)
def test_bad_serve_options_exit_2_before_any_server_starts(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "finflow_panel.cli", "serve", "--port", "1", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "serving" not in result.stdout
    assert "secret" not in result.stderr


def _holdings(rows):
    return "symbol,quantity,price\n" + "".join(f"{row}\n" for row in rows)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_holdings(["AAPL,1,100", "time,1,50"]), "symbol(s) time clash with the chart's own"),
        (_holdings(["AAPL,1,1e308"]), ":2: price for AAPL is 1e308; it must be at most 1e+09"),
        (
            "symbol,quantity,price,volatility\nAAPL,1,100,50\n",
            "volatility for AAPL is 50.0; it must be finite, >= 0.0 and <= 10.0",
        ),
        (
            _holdings(f"S{i},1,10" for i in range(51)),
            "51 holdings is more than a dashboard shows (at most 50)",
        ),
    ],
)
def test_a_portfolio_no_session_could_show_is_refused_at_start_up(tmp_path, text, message):
    book = tmp_path / "book.csv"
    book.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "finflow_panel.cli", "serve", "--port", "1", "--portfolio", book],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(book) in lines[0], result.stderr
    assert "serving" not in result.stdout


def test_bad_portfolio_file_is_named(tmp_path):
    bad = tmp_path / "book.csv"
    bad.write_text("symbol,quantity,price\nAAPL,-5,100\n")
    result = subprocess.run(
        [sys.executable, "-m", "finflow_panel.cli", "serve", "--portfolio", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{bad}:2: quantity for AAPL is negative" in result.stderr


def test_panel_serve_on_the_dashboard_notebook():
    notebook = Path(__file__).parents[2] / "notebooks" / "live_portfolio.ipynb"
    process = ServerProcess(
        "--allow-websocket-origin",
        "*",
        cmd=[sys.executable, "-m", "panel", "serve", str(notebook)],
    ).start(ready_path="/live_portfolio")

    async def main():
        client, columns = await _session(process, route="/live_portfolio")
        first = await client.next_rows()
        second = await client.next_rows()
        client.close()
        assert first.seq[0] == columns["seq"][-1] + 1
        assert second.seq[0] == first.seq[-1] + 1

    try:
        run_async(main())
    finally:
        process.stop()


def test_closed_sessions_memory_is_reclaimed_while_sessions_keep_coming_and_going(server):
    """A closed session's objects are gone within ~20 s of its expiry, even while others
    open and close every few seconds (the reclaim used to be pushed back by each close)."""

    async def main():
        kept = [c for c, _ in await asyncio.gather(*[_session(server) for _ in range(3)])]
        closed_at, samples = [], []
        start = time.monotonic()
        while time.monotonic() - start < 50:
            client, _ = await _session(server)
            client.close()
            closed_at.append(time.monotonic())
            # Pace the churn by the market's clock: 15 ticks of 0.2 s, ~3 s.
            await _rows_until(kept[0], lambda rows: sum(len(r.seq) for r in rows) >= 15)
            now = time.monotonic()
            if now - start >= 30:
                status = json.loads((await AsyncHTTPClient().fetch(server.url + "/api/feed")).body)
                # Sessions closed over 25 s ago (20 s reclaim delay, ~1 s expiry) are gone.
                recent = sum(t > now - 25 for t in closed_at)
                samples.append((status["live_dashboards"], len(kept) + recent))
        for client in kept:
            client.close()
        assert samples and all(live <= bound for live, bound in samples), samples

    run_async(main())


def test_one_client_cannot_change_another_sessions_chart(server):
    async def main():
        (a, _), (b, _) = await asyncio.gather(_session(server), _session(server))
        for client in (a, b):  # both hold the same rows, now shared server-side
            await _rows_until(client, lambda rows: len(rows) >= 4)
        source_id, _ = a.chart_source()
        ref = {"id": source_id}
        patches = {"type": "map", "entries": [["AAPL", [[0, -666.0], [1, -666.0]]]]}
        rows = {"type": "map", "entries": [["AAPL", [-666.0]], ["seq", [10**9]]]}
        events = [
            {"kind": "ColumnsPatched", "model": ref, "attr": "data", "patches": patches},
            {"kind": "ColumnsStreamed", "model": ref, "attr": "data", "data": rows},
        ]
        await a.send("PATCH-DOC", {"events": events})
        await _rows_until(b, lambda rows: len(rows) >= 2)  # the edit has been handled
        for client in (b, a):  # what each session's server-side document now holds
            await client.pull_doc(ready=False)
            _, columns = client.chart_source()
            assert -666.0 not in columns["AAPL"] and 10**9 not in columns["seq"]
        a.close()
        b.close()

    run_async(main())


def test_portfolio_file_is_read_once_per_process(tmp_path):
    book = tmp_path / "book.csv"
    book.write_text(_holdings(["AAPL,10,190", "MSFT,5,410"]))
    process = ServerProcess("--portfolio", str(book), "--tick", "0.2", "--seed", "2").start()

    async def main():
        first, before = await _session(process)
        # Edited under the running server: new sessions must not see another book.
        book.write_text(_holdings(["AAPL,99,190", "MSFT,5,410", "XOM,3,110"]))
        second, after = await _session(process)
        first.close()
        second.close()
        assert set(after) == set(before)
        # Both sessions show the book as it was when the server started.
        assert _holdings_shown(first) == _holdings_shown(second) == {"AAPL": 10.0, "MSFT": 5.0}

    try:
        run_async(main())
    finally:
        process.stop()


def test_a_message_over_one_mib_closes_the_connection(server):
    # Only the frame header goes out: the server must refuse on the declared
    # length, before reading a byte of the payload. (Sending the payload too
    # would leave it unread when the server closes, and the kernel would then
    # reset the connection, racing the close frame to the client.)
    header = struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 20 | 1) + b"mask"

    async def main():
        client, _ = await _session(server)
        await client.ws.protocol.stream.write(header)
        deadline = time.monotonic() + 30
        while await asyncio.wait_for(client.ws.read_message(), deadline - time.monotonic()):
            pass  # replies and updates sent before the server read the header
        client.close()
        assert (client.ws.close_code, client.ws.close_reason) == (1009, "message too big")
        other, _ = await _session(server)  # the server goes on serving
        await other.next_rows()
        other.close()

    run_async(main())


def test_the_views_code_is_one_cached_module_not_part_of_every_document(server):
    async def main():
        client, _ = await _session(server)
        client.close()
        views = [m["attributes"] for m in _objects(client.doc) if m["attributes"].get("esm")]
        assert sorted(v["class_name"] for v in views) == [
            "ConnectionStatus", "Diagnostics", "HoldingsTable", "KpiCards"
        ]  # fmt: skip
        urls = {(v["bundle"], v["esm"]) for v in views}
        assert len(urls) == 1  # one module for the four views
        ((kind, url),) = urls
        assert kind == "url" and url.endswith("/components.bundle.js")
        http = AsyncHTTPClient()
        response = await http.fetch(f"{server.url}/{url.removeprefix('./')}")
        assert response.body.decode() == BUNDLE.read_text(encoding="utf-8")
        assert "javascript" in response.headers["Content-Type"]
        # The route serves the bundle, not the package's other files.
        outside = (
            f"{server.url}/{url.removeprefix('./').replace('components.bundle.js', 'dashboard.py')}"
        )
        refused = await http.fetch(outside, raise_error=False)
        assert refused.code in (403, 404)
        # Nor anything above the package, however the path is spelled.
        base = f"{server.url}/{url.removeprefix('./').rsplit('/', 1)[0]}"
        for climb in ("..%2F..%2Fapp.py", "%2E%2E/%2E%2E/app.py", "..%5C..%5Capp.py"):
            escaped = await http.fetch(f"{base}/{climb}", raise_error=False)
            assert escaped.code in (400, 403, 404), climb

    run_async(main())


def _objects(value):
    """Every model representation in a pulled document's JSON."""
    if isinstance(value, dict):
        if value.get("type") == "object" and "attributes" in value:
            yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


@pytest.fixture
def lasting_server():
    """Sessions outlive a dropped connection by 60 s, as they would for a browser."""
    process = ServerProcess(
        "--tick", "0.2", "--interval", "0.2", "--seed", "4", "--session-lifetime", "60"
    ).start()
    yield process
    process.stop()


def test_a_session_without_a_connection_costs_nothing_and_backfills_on_return(lasting_server):
    server = lasting_server

    def sent():
        return sum(server.feed()["deliveries"].values())

    async def main():
        client, _ = await _session(server)
        await _rows_until(client, lambda rows: len(rows) >= 3)
        client.close()
        wait_until(lambda: server.feed()["subscribers"] == 1, timeout=10)
        start, before = server.feed()["last_seq"], sent()
        wait_until(lambda: server.feed()["last_seq"] >= start + 15, timeout=30)
        assert sent() - before <= 1  # one update may have been on its way at the close

        # The same session, connected again: the document it pulls, then one update
        # carrying every tick it missed.
        again = await SessionClient.open(server.url + "/portfolio", token=client.token)
        await again.pull_doc()
        _, columns = again.chart_source()
        rows = await again.next_rows()
        again.close()
        assert rows.seq[0] == columns["seq"][-1] + 1
        assert rows.seq[-1] >= start + 15
        np.testing.assert_array_equal(np.diff(rows.seq), 1)

    run_async(main())


def test_an_interval_out_of_range_from_a_client_is_one_log_line():
    process = ServerProcess("--tick", "0.2", "--interval", "0.2").start()

    async def main():
        client, _ = await _session(process)
        field = client.find_model(lambda n: n["attributes"].get("title") == "Update interval (s)")
        await client.set_property(field["id"], "value", 1000.0)
        deadline = time.monotonic() + 20
        while True:  # the field is put back to the interval in force
            message = await client.next_patch(deadline - time.monotonic())
            if any(
                e.get("attr") == "value" and e["model"]["id"] == field["id"]
                for e in message.content["events"]
            ):
                break
        [event] = [e for e in message.content["events"] if e.get("attr") == "value"]
        assert event["new"] == 0.2
        client.close()

    try:
        run_async(main())
    finally:
        process.stop()
    refused = [line for line in process.output.splitlines() if "refused" in line]
    assert refused == ["refused update interval 1000.0 from a browser (must be 0.1-60 s)"]
    assert "Traceback" not in process.output
