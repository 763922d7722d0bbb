"""The JSON WebSocket API (``/ws/portfolio/``) and ``finflow-panel watch`` on real
servers, tried as their users and as outsiders."""

from __future__ import annotations

import asyncio
import math
import struct
import subprocess
import sys
import time

import pytest
from tornado.httpclient import HTTPClientError

from finflow_panel.client import PortfolioClient, SessionClient
from finflow_panel.store.credentials import add_user
from tests.util import HTTP, ServerProcess, run_async, until

SECRET = "y" * 40
DATA_KEYS = {"portfolio_id", "portfolio_name", "total_value", "total_change",
             "total_change_percent", "investments", "seq", "timestamp"}  # fmt: skip
INVESTMENT_KEYS = {"symbol", "name", "current_price", "change", "change_percent", "quantity",
                   "value"}  # fmt: skip


@pytest.fixture(scope="module")
def server():
    process = ServerProcess("--tick", "0.2", "--seed", "11").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws-site")
    add_user(tmp / "users.json", "ann", "ann-password")
    add_user(tmp / "users.json", "bob", "bob-password")
    process = ServerProcess(
        "--tick", "0.2", "--basic-auth", str(tmp / "users.json"), "--cookie-secret", SECRET,
        "--store", f"sqlite:///{tmp}/finflow.db",
    ).start()  # fmt: skip
    yield process
    process.stop()


def _cookie(site, user: str) -> str:
    return run_async(PortfolioClient.sign_in(site.url, user, f"{user}-password"))


def test_connection_names_the_same_portfolio_as_the_dashboard_and_the_api(server):
    async def main():
        for path in ("/ws/portfolio/", "/ws/portfolio"):
            client = await PortfolioClient.connect(server.url + path)
            hello = client.established
            named = (hello["portfolio_id"], hello["portfolio_name"])
            assert named == ("sample", "Sample portfolio")
            assert hello["user"] is None
            await client.aclose()
        session = await SessionClient.open(server.url + "/portfolio")
        await session.pull_doc()
        await _close(session)
        # The dashboard's header shows the same portfolio by name.
        shown = "ff-book&quot;&gt;Sample portfolio&lt;"
        session.find_model(lambda m: shown in str(m["attributes"].get("text")))

    run_async(main())
    _, _, listed = HTTP(server.url).call("GET", "/api/portfolios")
    assert listed == [{"portfolio_id": "sample", "portfolio_name": "Sample portfolio"}]


def test_portfolio_data_has_the_original_shape_at_a_real_tick(server):
    async def main():
        client = await PortfolioClient.connect(server.url)
        data = await client.get_portfolio_data()
        await client.aclose()
        return data

    data = run_async(main())
    assert set(data) == DATA_KEYS
    assert data["seq"] <= server.feed()["last_seq"]
    assert abs(data["timestamp"] - time.time() * 1000) < 60_000
    assert all(set(item) == INVESTMENT_KEYS for item in data["investments"])
    values = [item["value"] for item in data["investments"]]
    assert math.isclose(sum(values), data["total_value"], rel_tol=1e-12)
    for item in data["investments"]:
        assert math.isclose(item["value"], item["current_price"] * item["quantity"])


def test_updates_carry_the_dashboards_prices_and_count_as_subscribers(server):
    async def main():
        session = await SessionClient.open(server.url + "/portfolio")
        await session.pull_doc()
        client = await PortfolioClient.connect(server.url)
        base = server.feed()["subscribers"]
        await client.start_updates(interval=0.2)
        await until(lambda: server.feed()["subscribers"] == base + 1, what="one more subscriber")
        updates = []
        async for data in client.updates(timeout=20):
            updates.append(data)
            if len(updates) == 6:
                break
        seqs = [u["seq"] for u in updates]
        assert seqs == sorted(set(seqs)) and seqs[-1] - seqs[0] <= 10
        # The same tick has the same price here as in the dashboard's chart source.
        prices = {}
        deadline = time.monotonic() + 30
        wanted = {u["seq"] for u in updates[1:]}
        while not wanted <= set(prices) and time.monotonic() < deadline:
            rows = await session.next_rows()
            prices.update(zip(rows.seq.tolist(), rows.columns["AAPL"].tolist(), strict=True))
        for update in updates[1:]:
            (aapl,) = [i for i in update["investments"] if i["symbol"] == "AAPL"]
            assert aapl["current_price"] == prices[update["seq"]]
        await client.stop_updates()
        await until(lambda: server.feed()["subscribers"] == base, what="subscriber released")
        await client.aclose()
        await _close(session)

    run_async(main())


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('{"type": "subscribe"}', "unknown message type 'subscribe'"),
        ('{"no": "type"}', "unknown message type 'None'"),
        ('{"type": "start_updates", "interval": 0}', "interval must be a number"),
        ('{"type": "start_updates", "interval": 61}', "from 0.1 to 60, got 61"),
        ('{"type": "start_updates", "interval": "5"}', 'got "5"'),
        ('{"type": "start_updates", "interval": true}', "got true"),
        ('{"type": "start_updates", "interval": NaN}', "got NaN"),
        ('{"type": "get_portfolio_data", "portfolio_id": 7}', "portfolio_id must be a string"),
        ('{"type": "get_portfolio_data", "portfolio_id": "other"}', "no such portfolio: 'other'"),
        ('{"type": "get_portfolio_data", "extra": 1}', "does not take 'extra'"),
        ('{"type": "stop_updates", "interval": 1}', "does not take 'interval'"),
    ],
)
def test_a_bad_message_gets_an_error_naming_the_problem_and_the_connection_stays(
    server, message, error
):
    async def main():
        client = await PortfolioClient.connect(server.url)
        await client.ws.write_message(message)
        reply = await client.receive()
        assert reply["type"] == "error" and error in reply["message"], reply
        assert set(await client.get_portfolio_data()) == DATA_KEYS  # still open
        await client.aclose()

    run_async(main())


def test_binary_frames_and_floods_are_refused_without_closing(server):
    async def main():
        client = await PortfolioClient.connect(server.url)
        await client.ws.write_message(b'{"type": "get_portfolio_data"}', binary=True)
        reply = await client.receive()
        assert reply == {"type": "error", "message": "send text frames of JSON, not binary frames"}
        for _ in range(60):
            await client.send({"type": "get_portfolio_data"})
        # A marker whose reply is known: once it is answered, every reply to the flood
        # has arrived (messages are handled in order). Markers sent while messages are
        # still being dropped are dropped too, so it is sent again until one is answered.
        marker = {"type": "get_portfolio_data", "portfolio_id": "end-of-flood"}
        answer = {"type": "error", "message": "no such portfolio: 'end-of-flood'"}
        replies = []
        while answer not in replies:
            await client.send(marker)
            try:
                while answer not in replies:
                    replies.append(await client.receive(timeout=0.5))
            except asyncio.TimeoutError:
                pass  # the marker was dropped: send it again
        replies = replies[: replies.index(answer)]
        kinds = [r["type"] for r in replies]
        assert kinds.count("error") == 1
        assert "too many messages" in replies[kinds.index("error")]["message"]
        assert kinds.count("portfolio_data") < 60  # the rest were dropped
        await client.aclose()

    run_async(main())


def test_a_frame_over_64_kib_closes_the_connection_with_1009(server):
    # Only the header, declaring 64 KiB + 1: refused on the length, before any payload.
    header = struct.pack("!BBQ", 0x81, 0x80 | 127, 64 * 1024 + 1) + b"mask"

    async def main():
        client = await PortfolioClient.connect(server.url)
        request = '{"type": "get_portfolio_data"}'
        await client.ws.write_message(request.ljust(64 * 1024))  # exactly 64 KiB is read
        assert (await client.receive())["type"] == "portfolio_data"
        await client.ws.protocol.stream.write(header)
        while await asyncio.wait_for(client.ws.read_message(), 30):
            pass
        await client.aclose()
        assert (client.ws.close_code, client.ws.close_reason) == (1009, "message too big")
        other = await PortfolioClient.connect(server.url)  # the server goes on serving
        assert set(await other.get_portfolio_data()) == DATA_KEYS
        await other.aclose()

    run_async(main())


def test_browsers_from_other_origins_are_refused_native_clients_are_not(server):
    async def main():
        with pytest.raises(HTTPClientError) as refused:
            await PortfolioClient.connect(server.url, origin="http://evil.example")
        assert refused.value.code == 403
        own = await PortfolioClient.connect(server.url, origin=server.url)
        await own.aclose()
        native = await PortfolioClient.connect(server.url)  # no Origin header
        await native.aclose()

    run_async(main())


def test_with_sign_in_a_connection_needs_the_cookie_and_follows_only_its_users(site):
    ann, bob = _cookie(site, "ann"), _cookie(site, "bob")

    async def main():
        for cookie in (None, "user=forged", ann.replace("user=", "user=x")):
            with pytest.raises(HTTPClientError) as refused:
                await PortfolioClient.connect(site.url, cookie=cookie)
            assert refused.value.code == 401
        ann_client = await PortfolioClient.connect(site.url, cookie=ann)
        bob_client = await PortfolioClient.connect(site.url, cookie=bob)
        assert ann_client.established["user"] == "ann"
        ann_id = ann_client.established["portfolio_id"]
        bob_id = bob_client.established["portfolio_id"]
        assert ann_id != bob_id
        assert (await ann_client.get_portfolio_data())["portfolio_id"] == ann_id
        for request in ({"type": "get_portfolio_data", "portfolio_id": bob_id},
                        {"type": "start_updates", "portfolio_id": bob_id}):  # fmt: skip
            await ann_client.send(request)
            reply = await ann_client.receive()
            assert reply == {"type": "error", "message": f"no such portfolio: {bob_id!r}"}
        await bob_client.aclose()
        # Ann edits her portfolio through the API: her live updates follow the change.
        http = HTTP(site.url)
        http.cookies["user"] = ann.split("=", 1)[1]
        body = {"portfolio_name": "Two", "holdings": [{"symbol": "KO", "quantity": 3}]}
        await ann_client.start_updates(interval=0.2)
        status, _, _ = await asyncio.to_thread(http.call, "PUT", f"/api/portfolios/{ann_id}", body)
        assert status == 200
        async for data in ann_client.updates(timeout=20):
            if data["portfolio_name"] == "Two":
                assert [i["symbol"] for i in data["investments"]] == ["KO"]
                break
        await ann_client.aclose()

    run_async(main())


def _watch(*args, stdin=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "finflow_panel.cli", "watch", *args],
        input=stdin, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_watch_prints_the_live_portfolio(server):
    done = _watch(server.url, "--interval", "0.2", "--count", "3")
    assert done.returncode == 0, done.stderr
    tables = done.stdout.split("Sample portfolio (sample)")[1:]
    assert len(tables) == 3 and all("Total value" in t and "AAPL" in t for t in tables)
    ticks = [int(t.split("tick ")[1].split()[0]) for t in tables]
    assert ticks == sorted(set(ticks))
    once = _watch(f"{server.url}/portfolio", "--once")
    assert once.returncode == 0 and once.stdout.startswith("Sample portfolio (sample)")


def test_watch_fails_clearly(server, site):
    down = _watch("http://127.0.0.1:9", "--once")
    assert down.returncode == 1 and "cannot follow ws://127.0.0.1:9/ws/portfolio/" in down.stderr
    bad = _watch("ftp://host", "--once")
    assert bad.returncode == 2 and "not a server URL" in bad.stderr
    refused = _watch(site.url, "--once")
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr and "--user" in refused.stderr
    wrong = _watch(site.url, "--once", "--user", "ann", stdin="nope\n")
    assert wrong.returncode == 2 and "refused" in wrong.stderr
    signed = _watch(site.url, "--once", "--user", "ann", stdin="ann-password\n")
    assert signed.returncode == 0 and "Total value" in signed.stdout, signed.stderr
    unknown = _watch(server.url, "--once", "--portfolio", "nope")
    assert unknown.returncode == 1 and "no such portfolio: 'nope'" in unknown.stderr


def test_many_clients_each_get_updates_at_their_interval_until_they_stop(server):
    async def main():
        clients = await asyncio.gather(*[PortfolioClient.connect(server.url) for _ in range(50)])
        for client in clients:
            await client.start_updates(interval=0.2)

        async def three(client):
            return [data["seq"] async for data in _take(client.updates(timeout=30), 3)]

        for seqs in await asyncio.gather(*[three(c) for c in clients]):
            assert seqs == sorted(set(seqs))
        for client in clients[2:]:
            await client.aclose()
        ticking = clients[1]  # keeps the market ticking (it ticks while anyone follows)
        # A slower interval than the tick: every third tick (0.6 s at 0.2 s ticks).
        slow = clients[0]
        await slow.start_updates(interval=0.6)
        seqs = [data["seq"] async for data in _take(slow.updates(timeout=30), 6)]
        gaps = [b - a for a, b in zip(seqs[1:], seqs[2:], strict=False)]
        assert all(2 <= gap <= 4 for gap in gaps) and sum(gaps) / len(gaps) > 2.5, seqs
        # After stop_updates (and the reply to a request sent after it), no more updates.
        await slow.stop_updates()
        await slow.get_portfolio_data()
        last = server.feed()["last_seq"]
        await until(lambda: server.feed()["last_seq"] >= last + 5, what="five more ticks")
        await slow.send({"type": "get_portfolio_data"})
        assert (await slow.receive())["type"] == "portfolio_data"
        await slow.aclose()
        await ticking.aclose()

    run_async(main())


async def _take(updates, n):
    async for data in updates:
        yield data
        n -= 1
        if n == 0:
            return


async def _close(session: SessionClient) -> None:
    """Close a Bokeh session's websocket and wait for the server's close."""
    session.close()
    while await asyncio.wait_for(session.ws.read_message(), 10) is not None:
        pass


ALERT_ERRORS = [
    ({"target": "AAPL", "condition": "above", "value": "190"}, 'value must be a number, got "190"'),
    ({"target": "AAPL", "condition": "above", "value": None}, "value must be a number, got null"),
    ({"target": "TSLA2", "condition": "above", "value": 1}, "Target: unknown symbol 'TSLA2'"),
    ({"target": "AAPL", "condition": "moves by %", "value": -1},
     "Value: a move must be a positive per cent"),
    ({"target": "AAPL", "condition": "crosses", "value": 1},
     "Condition: must be one of above, below, moves by %"),
    ({"target": 5, "condition": "above", "value": 1}, "target must be a string"),
    ({"target": "AAPL", "condition": "above", "value": 1, "when": "now"},
     "add_alert does not take 'when'"),
]  # fmt: skip


def test_a_connections_alerts_fire_to_it_alone_and_bad_ones_are_refused(server):
    async def main():
        mine = await PortfolioClient.connect(server.url)
        other = await PortfolioClient.connect(server.url)
        for fields, message in ALERT_ERRORS:
            await mine.send({"type": "add_alert", **fields})
            assert await mine.receive() == {"type": "error", "message": message}
        assert (await mine.get_alerts()) == {"alerts": [], "log": []}
        alert = await mine.add_alert("AAPL", "above", 1)  # true now: fires on the next tick
        assert alert["target"] == "AAPL" and alert["value"] == 1.0
        fired = await anext(mine.fired(timeout=20))
        assert fired["alert_id"] == alert["alert_id"] and fired["seq"] >= 0
        assert fired["message"] == f"AAPL above 1.00: now {fired['current']:,.2f}"
        portfolio = await mine.add_alert("Portfolio", "below", 1e12)
        fired = await anext(mine.fired(timeout=20))
        data = await mine.get_portfolio_data()
        assert fired["alert_id"] == portfolio["alert_id"]
        assert fired["current"] == pytest.approx(data["total_value"], rel=0.02)
        listed = await mine.get_alerts()
        ids = [a["alert_id"] for a in listed["alerts"]]
        assert ids == [alert["alert_id"], portfolio["alert_id"]]
        await mine.remove_alert(alert["alert_id"])
        await mine.send({"type": "remove_alert", "alert_id": alert["alert_id"]})
        assert await mine.receive() == {
            "type": "error", "message": f"no such alert: {alert['alert_id']!r}"
        }  # fmt: skip
        # the other connection's alerts are its own: it heard nothing, and cannot remove them
        await other.send({"type": "remove_alert", "alert_id": portfolio["alert_id"]})
        reply = await other.receive()
        assert reply == {"type": "error", "message": f"no such alert: {portfolio['alert_id']!r}"}
        assert (await other.get_alerts())["alerts"] == []
        await mine.aclose()
        await other.aclose()

    run_async(main())


def test_a_users_alerts_fire_to_all_their_connections_and_no_one_elses(site):
    ann, bob = _cookie(site, "ann"), _cookie(site, "bob")

    async def main():
        first = await PortfolioClient.connect(site.url, cookie=ann)
        second = await PortfolioClient.connect(site.url, cookie=ann)
        bobs = await PortfolioClient.connect(site.url, cookie=bob)
        bob_id = bobs.established["portfolio_id"]
        await first.send({"type": "add_alert", "target": "Portfolio", "condition": "above",
                          "value": 1, "portfolio_id": bob_id})  # fmt: skip
        refused = await first.receive()
        assert refused == {"type": "error", "message": f"no such portfolio: {bob_id!r}"}
        alert = await first.add_alert("MSFT", "above", 1)
        for client in (first, second):  # added on one, fired to both
            fired = await anext(client.fired(timeout=20))
            assert fired["alert_id"] == alert["alert_id"]
        assert [a["alert_id"] for a in (await second.get_alerts())["alerts"]] == [alert["alert_id"]]
        bob_sees = await bobs.get_alerts()
        assert bob_sees["alerts"] == [] and bob_sees["log"] == []
        await bobs.send({"type": "remove_alert", "alert_id": alert["alert_id"]})
        assert (await bobs.receive())["type"] == "error"
        # ann's log (in the store) holds the firing once, however many connections heard it
        log = await until_logged(second, alert["alert_id"])
        assert [e["alert_id"] for e in log].count(alert["alert_id"]) == 1
        await second.remove_alert(alert["alert_id"])
        for client in (first, second, bobs):
            await client.aclose()

    run_async(main())


async def until_logged(client, alert_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        log = (await client.get_alerts())["log"]
        if any(e["alert_id"] == alert_id for e in log) or time.monotonic() > deadline:
            return log
        await asyncio.sleep(0.2)


def test_stored_alerts_fire_with_nobody_connected_into_the_log_seen_next_time(tmp_path):
    from finflow_panel.store import Position, open_store

    add_user(tmp_path / "users.json", "ann", "ann-password")
    store = open_store(f"sqlite:///{tmp_path}/finflow.db")
    book = store.create("ann", "Mine", [Position("AAPL", 10.0), Position("MSFT", 2.0)])
    store.add_alert("ann", {"alert_id": "up", "target": "AAPL", "condition": "above", "value": 1.0})
    store.add_alert("ann", {"alert_id": "book", "target": "Portfolio", "condition": "below",
                            "value": 1e9, "portfolio_id": book.portfolio_id})  # fmt: skip
    store.close()
    site = ServerProcess(
        "--tick", "0.2", "--basic-auth", str(tmp_path / "users.json"), "--cookie-secret", SECRET,
        "--store", f"sqlite:///{tmp_path}/finflow.db",
    ).start()  # fmt: skip
    try:
        # Nobody has opened anything: the market ticks for ann's alerts all the same.
        start = site.feed()["last_seq"]
        until_sync(lambda: site.feed()["last_seq"] >= start + 5)
        assert site.feed()["subscribers"] == 0
        seq_before_anyone = site.feed()["last_seq"]
        cookie = _cookie(site, "ann")

        async def main():
            client = await PortfolioClient.connect(site.url, cookie=cookie)
            seen = await client.get_alerts()
            await client.aclose()
            return seen

        seen = run_async(main())
        assert {a["alert_id"] for a in seen["alerts"]} == {"up", "book"}
        fired = {e["alert_id"]: e for e in seen["log"]}
        assert set(fired) == {"up", "book"}
        assert all(e["seq"] <= seq_before_anyone for e in fired.values())
        assert fired["up"]["message"].startswith("AAPL above 1.00: now ")
        value = fired["book"]["current"]
        assert fired["book"]["message"] == f"Portfolio below 1,000,000,000.00: now {value:,.2f}"
        # ann's book (10 AAPL near 190, 2 MSFT near 415), not one price nor the sample's
        assert 2000 < value < 3500
    finally:
        site.stop()


def until_sync(predicate, timeout=30.0):
    from tests.util import wait_until

    wait_until(predicate, timeout=timeout, interval=0.1)
