"""The app's configuration, status route and session memory policy."""

from __future__ import annotations

import gc
import json
import re

import panel as pn
import pytest
from bokeh.document import Document

from finflow_panel.app import (
    FeedStatusHandler,
    ServeConfig,
    SessionHeapPolicy,
    build_dashboard,
    trim_document,
)


def _empty(value) -> bool:
    return value in ([], {}) or value == {"type": "map"} or value == {"type": "map", "entries": []}


def _models_by_id(doc_json: dict) -> tuple[list, dict]:
    """The document's roots and every model's attributes, with models as references
    (the serializer defines a model where it first meets it, which may move), and
    without empty lists and dicts (a cached empty default is written out, an uncached
    one is not; BokehJS starts from the same empty value either way)."""
    models = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "id" in node:
                if "name" in node:
                    attributes = {
                        k: walk(v) for k, v in node.get("attributes", {}).items() if not _empty(v)
                    }
                    models[node["id"]] = (node["name"], attributes)
                return {"ref": node["id"]}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(doc_json["roots"]), models


def test_trimming_a_session_document_changes_nothing_it_holds():
    doc = Document()
    pn.panel(build_dashboard(ServeConfig(seed=1))).server_doc(doc)
    ids = {m.id for m in doc.models}
    empties = sum(
        isinstance(v, (list, dict)) and not v
        for m in doc.models
        for v in m._unstable_default_values.values()
    )
    assert empties > len(doc.models)  # Bokeh cached them while collecting models
    before = _models_by_id(doc.to_json(deferred=False))

    trim_document(doc)

    assert not any(
        isinstance(v, (list, dict)) and not v
        for m in doc.models
        for v in m._unstable_default_values.values()
    )
    after = _models_by_id(doc.to_json(deferred=False))
    assert after == before
    assert {m.id for m in doc.models} == ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("on", True), ("Yes", True), ("", False), ("off", False), ("0", False)],
)
def test_always_on_reads_yes_and_no(text, expected):
    assert ServeConfig.from_env({"FINFLOW_ALWAYS_ON": text}).always_on is expected


def test_redis_url_comes_from_the_environment():
    assert ServeConfig.from_env({"FINFLOW_REDIS": "redis://h:6379/1"}).redis == "redis://h:6379/1"
    assert ServeConfig.from_env({}).redis is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FINFLOW_ALWAYS_ON": "sometimes"}, "FINFLOW_ALWAYS_ON='sometimes' is not a yes/no"),
        ({"FINFLOW_HISTORY": "20000000"}, "history must be between 1 and 10,000,000 ticks"),
        ({"FINFLOW_TICK": "fast"}, "FINFLOW_TICK='fast' is not a valid float"),
        ({"FINFLOW_REDIS": "http://u:pw@host"}, "bad Redis URL 'http://u:***@host'"),
    ],
)
def test_bad_environment_options_are_named(environ, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ServeConfig.from_env(environ)


class ManualLoop:
    """A loop whose clock the test moves: ``call_later`` timers run in `run_until`."""

    def __init__(self):
        self.now, self.timers = 0.0, []

    def call_later(self, delay, callback):
        timer = (self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def run_until(self, until):
        while due := sorted((t for t in self.timers if t[0] <= until), key=lambda t: t[0]):
            self.timers.remove(due[0])
            self.now = due[0][0]
            due[0][1]()
        self.now = until


def test_reclaim_runs_within_its_delay_of_every_close_however_sessions_churn(monkeypatch):
    loop = ManualLoop()
    policy = SessionHeapPolicy(reclaim_delay=20.0, loop=loop)
    collected_at = []
    monkeypatch.setattr(gc, "unfreeze", lambda: None)
    monkeypatch.setattr(gc, "freeze", lambda: None)
    monkeypatch.setattr(gc, "collect", lambda *args: collected_at.append(loop.now) or 0)
    closes = [4.0 * i for i in range(30)]  # a session closes every 4 s for two minutes
    for closed in closes:
        loop.run_until(closed)
        policy.session_closed(None)
    loop.run_until(closes[-1] + 60)
    for closed in closes:
        assert any(closed < t <= closed + 20.0 for t in collected_at), (closed, collected_at)
    assert len(collected_at) <= len(closes) / 5 + 1  # at most one reclaim per 20 s


def test_feed_status_reads_only_and_shows_no_configuration(monkeypatch):
    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from tornado.web import Application

    from tests.util import run_async

    work = []
    monkeypatch.setattr(gc, "unfreeze", lambda: work.append("unfreeze"))
    monkeypatch.setattr(gc, "collect", lambda *args: work.append("collect") or 0)
    config = ServeConfig(seed=987654321)

    async def fetch(query):
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(Application([(r"/api/feed", FeedStatusHandler, {"config": config})]))
        server.add_sockets(sockets)
        try:
            url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/api/feed{query}"
            response = await AsyncHTTPClient().fetch(url)
        finally:
            server.stop()
        return response.body.decode()

    for query in ("", "?gc=1"):
        body = run_async(fetch(query))
        status = json.loads(body)
        assert {"symbols", "last_seq", "subscribers", "tick_rate", "live_dashboards"} <= set(status)
        assert "config" not in status and "987654321" not in body
    assert work == []  # nothing a request asks for starts a collection on the shared loop


def test_users_portfolios_default_to_the_markets_redis_then_to_sqlite():
    assert ServeConfig(basic_auth="u.json").store_url == "sqlite:///finflow.db"
    redis = "redis://127.0.0.1:6379/0"
    assert ServeConfig(basic_auth="u.json", redis=redis).store_url == redis
    assert ServeConfig(basic_auth="u.json", redis=redis, store="sqlite:///x.db").store_url == (
        "sqlite:///x.db"
    )
    assert not ServeConfig().sign_in and ServeConfig(oauth_provider="github").sign_in


def test_chart_options_come_from_a_links_query_and_bad_ones_are_left_out():
    from finflow_panel.app import chart_options

    args = {
        "chart": [b"Candles"], "bar": [b"30"], "indicators": [b"SMA,Bollinger"],
        "window": [b"50"], "prices": [b"price"], "series": [b"AAPL"],
    }  # fmt: skip
    assert chart_options(args) == {
        "chart": "Candles", "bar_ticks": 30, "indicators": ["SMA", "Bollinger"],
        "window": 50, "price_view": "Price", "series": "AAPL",
    }  # fmt: skip
    bad = {
        "chart": [b"Pie"], "bar": [b"7"], "indicators": [b"RSI"], "window": [b"x"],
        "prices": [b"log"], "series": [b"A" * 5000],
    }  # fmt: skip
    options = chart_options(bad)
    assert set(options) == {"series"} and len(options["series"]) == 200  # bounded
