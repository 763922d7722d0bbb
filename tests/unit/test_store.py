"""One suite for every portfolio store backend: SQLite (a file) and a real redis-server."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from finflow_panel.store import (
    ALERT_LOG_SIZE,
    EVERYONE,
    MAX_ALERTS,
    MAX_PORTFOLIOS,
    Position,
    StoreError,
    StoreUnavailable,
    open_store,
    parse_portfolio,
)
from finflow_panel.store.sqlite import MIGRATIONS
from tests.util import wait_until

SYMBOLS = ("AAPL", "MSFT", "NVDA")
STARTER = ("Sample portfolio", (Position("AAPL", 50.0), Position("MSFT", 30.0)))


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path}/finflow.db")
    else:
        server = request.getfixturevalue("redis_server")
        store = open_store(server.url)
        store._client.flushdb()
    yield store
    store.close()


def test_a_portfolio_round_trips_and_is_its_owners_only(store):
    made = store.create("ann", " Growth  fund ", [Position("AAPL", 2.5, 150.0)])
    assert made.name == "Growth fund" and len(made.portfolio_id) >= 16
    assert store.get("ann", made.portfolio_id) == made
    assert store.portfolios("ann") == [made]
    # Another user: the id reads as missing, for every operation, and nothing changes.
    assert store.get("bob", made.portfolio_id) is None
    assert store.replace("bob", made.portfolio_id, "mine", [Position("NVDA", 1.0)]) is None
    assert store.delete("bob", made.portfolio_id) is False
    assert store.portfolios("bob") == []
    assert store.get("ann", made.portfolio_id) == made


def test_replace_and_delete(store):
    first = store.create("ann", "One", [Position("AAPL", 1.0)])
    second = store.create("ann", "Two", [Position("MSFT", 2.0)])
    new = store.replace("ann", first.portfolio_id, "Uno", [Position("NVDA", 3.0, 99.5)])
    assert new.name == "Uno" and new.positions == (Position("NVDA", 3.0, 99.5),)
    assert new.created == first.created and new.updated >= first.updated
    assert [p.portfolio_id for p in store.portfolios("ann")] == [
        first.portfolio_id,
        second.portfolio_id,
    ]
    assert store.delete("ann", first.portfolio_id) is True
    assert store.delete("ann", first.portfolio_id) is False
    assert store.get("ann", first.portfolio_id) is None
    assert store.portfolios("ann") == [second]
    assert store.replace("ann", "no-such-id", "x", []) is None


def test_a_new_user_gets_the_starter_once_even_when_sessions_race(store):
    results = []

    def open_session():
        results.append(store.ensure_user("ann", lambda: STARTER))

    threads = [threading.Thread(target=open_session) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [only] = store.portfolios("ann")
    assert (only.name, only.positions) == STARTER
    assert all(r == [only] for r in results)
    # A user who deleted everything keeps an empty list: the starter is for new users.
    store.delete("ann", only.portfolio_id)
    assert store.ensure_user("ann", lambda: STARTER) == []


def test_a_user_keeps_at_most_the_limit(store):
    for i in range(MAX_PORTFOLIOS):
        store.create("ann", f"p{i}", [Position("AAPL", 1.0)])
    with pytest.raises(StoreError, match=f"at most {MAX_PORTFOLIOS}"):
        store.create("ann", "one too many", [Position("AAPL", 1.0)])
    assert len(store.portfolios("ann")) == MAX_PORTFOLIOS


def test_listeners_hear_their_users_changes(store):
    heard = []
    stop = store.subscribe("ann", heard.append)
    made = store.create("ann", "One", [Position("AAPL", 1.0)])
    store.create("bob", "Theirs", [Position("AAPL", 1.0)])
    wait_until(lambda: heard == ["ann"], timeout=10)
    store.replace("ann", made.portfolio_id, "Two", [Position("AAPL", 2.0)])
    wait_until(lambda: heard == ["ann", "ann"], timeout=10)
    stop()
    store.delete("ann", made.portfolio_id)
    assert store.portfolios("ann") == []
    assert heard == ["ann", "ann"]


def _alert(i, **extra):
    return {"alert_id": f"al{i}", "target": "AAPL", "condition": "above", "value": 100.0 + i,
            **extra}  # fmt: skip


def test_alerts_are_kept_per_user_in_order_and_limited(store):
    heard = []
    store.subscribe(EVERYONE, heard.append)
    store.add_alert("ann", _alert(1))
    store.add_alert("ann", _alert(2, target="Portfolio", portfolio_id="p1"))
    store.add_alert("bob", _alert(3))
    assert store.alerts("ann") == [_alert(1), _alert(2, target="Portfolio", portfolio_id="p1")]
    assert store.alerts("bob") == [_alert(3)]
    assert store.alert_owners() == ["ann", "bob"]
    wait_until(lambda: sorted(heard) == ["ann", "ann", "bob"], timeout=10)
    # another user's id reads as missing
    assert store.remove_alert("bob", "al1") is False
    assert store.remove_alert("ann", "al1") is True
    assert store.remove_alert("ann", "al1") is False
    assert [a["alert_id"] for a in store.alerts("ann")] == ["al2"]
    store.remove_alert("bob", "al3")
    assert store.alert_owners() == ["ann"]
    for i in range(MAX_ALERTS - 1):
        store.add_alert("cy", _alert(100 + i))
    store.add_alert("cy", _alert(999))
    with pytest.raises(StoreError, match=f"at most {MAX_ALERTS} alerts"):
        store.add_alert("cy", _alert(1000))
    assert len(store.alerts("cy")) == MAX_ALERTS


def test_the_alert_log_keeps_each_firing_once_newest_first_and_bounded(store):
    def entry(i, seq):
        return {"alert_id": f"al{i}", "seq": seq, "timestamp": 1000.0 * seq, "message": f"m{seq}"}

    assert store.log_alert("ann", entry(1, 5)) is True
    # the same firing written by another process checking the same tick: kept once
    assert store.log_alert("ann", entry(1, 5)) is False
    assert store.log_alert("ann", entry(2, 5)) is True
    assert store.log_alert("ann", entry(1, 9)) is True
    assert [(e["alert_id"], e["seq"]) for e in store.alert_log("ann")] == [
        ("al1", 9), ("al2", 5), ("al1", 5)
    ]  # fmt: skip
    assert store.alert_log("bob") == []
    for seq in range(100, 100 + ALERT_LOG_SIZE + 5):
        store.log_alert("ann", entry(1, seq))
    log = store.alert_log("ann")
    assert len(log) == ALERT_LOG_SIZE
    assert log[0]["seq"] == 100 + ALERT_LOG_SIZE + 4 and log[-1]["seq"] == 105


def test_another_process_hears_changes_through_redis(redis_server):
    writer, reader = open_store(redis_server.url), open_store(redis_server.url)
    try:
        heard = []
        reader.subscribe("ann", heard.append)
        # The reader's listener subscribes in its own thread: write until it hears.
        wait_until(lambda: heard or writer.create("ann", "p", [Position("AAPL", 1.0)]) and heard,
                   timeout=10)  # fmt: skip
    finally:
        writer.close()
        reader.close()


def test_a_redis_outage_is_a_clear_error_that_changes_nothing(redis_server):
    from tests.util import free_port

    store = open_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StoreUnavailable, match="portfolio store is unavailable"):
            store.create("ann", "p", [Position("AAPL", 1.0)])
        with pytest.raises(StoreUnavailable):
            store.portfolios("ann")
    finally:
        store.close()


def test_sqlite_schema_is_versioned_and_kept_across_opens(tmp_path):
    url = f"sqlite:///{tmp_path}/f.db"
    store = open_store(url)
    made = store.create("ann", "Kept", [Position("AAPL", 1.0)])
    store.close()
    with sqlite3.connect(tmp_path / "f.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    store = open_store(url)
    assert store.portfolios("ann") == [made]
    store.close()
    # A file from a newer version is refused, not misread.
    with sqlite3.connect(tmp_path / "f.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreUnavailable, match="newer than this finflow_panel knows"):
        open_store(url)


def test_a_failed_write_leaves_the_portfolio_whole(tmp_path, monkeypatch):
    store = open_store(f"sqlite:///{tmp_path}/f.db")
    made = store.create("ann", "Whole", [Position("AAPL", 1.0)])

    def crash(*args):
        raise OSError("disk gone mid-write")

    # The record is made inside the transaction: failing there must roll it back.
    monkeypatch.setattr(type(made), "to_record", crash)
    with pytest.raises(OSError):
        store.replace("ann", made.portfolio_id, "Broken", [Position("MSFT", 9.0)])
    monkeypatch.undo()
    assert store.get("ann", made.portfolio_id) == made
    store.close()


@pytest.mark.parametrize(
    "url, message",
    [
        ("postgres://x/y", "expected sqlite:///path.db or redis://"),
        ("sqlite://", "expected sqlite:///relative/path.db"),
    ],
)
def test_bad_store_urls_are_named(url, message):
    with pytest.raises(ValueError, match=message):
        open_store(url)


def test_a_store_in_a_missing_directory_is_named(tmp_path):
    with pytest.raises(StoreUnavailable, match="no directory"):
        open_store(f"sqlite:///{tmp_path}/nope/f.db")


@pytest.mark.parametrize(
    "body, message",
    [
        ([], "expected a JSON object"),
        ({"holdings": []}, "portfolio_name must be text"),
        ({"portfolio_name": "  ", "holdings": []}, "portfolio_name is empty"),
        ({"portfolio_name": "x" * 81, "holdings": []}, "longer than 80"),
        ({"portfolio_name": "p", "holdings": {}}, "holdings must be a list"),
        ({"portfolio_name": "p", "holdings": []}, "needs at least one holding"),
        ({"portfolio_name": "p", "holdings": [], "owner": "bob"}, r"unknown field\(s\): owner"),
        ({"portfolio_name": "p", "holdings": ["AAPL"]}, r"holdings\[0\] must be an object"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "ZZZ", "quantity": 1}]},
         "unknown symbol 'ZZZ'"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "AAPL", "quantity": 0}]},
         "quantity of AAPL must be greater than 0"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "AAPL", "quantity": -1}]},
         "must be greater than 0"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "AAPL", "quantity": "10"}]},
         "must be a number"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "AAPL", "quantity": True}]},
         "must be a number"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "AAPL", "quantity": 1e13}]},
         "at most 1e\\+12"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "AAPL"}]}, "quantity is missing"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "AAPL", "quantity": 1},
                                              {"symbol": "aapl", "quantity": 2}]},
         "AAPL is listed twice"),
        ({"portfolio_name": "p",
          "holdings": [{"symbol": "AAPL", "quantity": 1, "cost_basis": -3}]},
         "cost_basis of AAPL must be greater than 0"),
        ({"portfolio_name": "p", "holdings": [{"symbol": "AAPL", "quantity": 1}] * 51},
         "51 holdings is more than 50"),
    ],
)  # fmt: skip
def test_bad_portfolios_name_the_problem(body, message):
    with pytest.raises(StoreError, match=message):
        parse_portfolio(json.loads(json.dumps(body)), SYMBOLS)


def test_a_good_portfolio_parses():
    body = {"portfolio_name": "Mine", "holdings": [
        {"symbol": " nvda ", "quantity": 3}, {"symbol": "AAPL", "quantity": 0.5,
                                             "cost_basis": 120}]}  # fmt: skip
    assert parse_portfolio(body, SYMBOLS) == (
        "Mine",
        (Position("NVDA", 3.0), Position("AAPL", 0.5, 120.0)),
    )
