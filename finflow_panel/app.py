"""The web app: ``finflow-panel serve`` or ``panel serve finflow_panel/app.py``.

Under ``panel serve`` this file runs afresh for every session, so the shared feed lives
in `SharedFeed.for_process` (an imported module) and the options come from environment
variables: FINFLOW_PORTFOLIO, FINFLOW_TICK, FINFLOW_INTERVAL, FINFLOW_HISTORY,
FINFLOW_SEED, FINFLOW_ALWAYS_ON.
"""

from __future__ import annotations

import gc
import json
import os
import resource
from dataclasses import asdict, dataclass
from pathlib import Path

import panel as pn
from tornado.web import RequestHandler

from finflow_panel.feed import SharedFeed
from finflow_panel.model import Portfolio
from finflow_panel.ui import LiveDashboard
from finflow_panel.ui.fanout import FanOut

__all__ = ["ServeConfig", "build_dashboard", "index_page", "process_feed", "serve"]

DASHBOARD_ROUTE = "portfolio"
#: Backdated ticks a new market starts with, so the first visitor sees a chart at once.
WARMUP_TICKS = 120
#: Each live tick simulates one trading minute (252 days x 390 minutes a year): moves
#: small enough to look like a market, large enough to see.
LIVE_DT = 1.0 / (252 * 390)


@dataclass(frozen=True)
class ServeConfig:
    """Options of the app, validated before any server starts."""

    portfolio: str | None = None
    tick: float = 1.0
    interval: float = 5.0
    history: int = 2000
    seed: int | None = None
    always_on: bool = False

    def __post_init__(self) -> None:
        if not 0.01 <= self.tick <= 3600:
            raise ValueError(f"tick must be between 0.01 and 3600 seconds, got {self.tick}")
        if not 0.1 <= self.interval <= 60:
            raise ValueError(f"interval must be between 0.1 and 60 seconds, got {self.interval}")
        if self.history < 1:
            raise ValueError(f"history must be at least 1 tick, got {self.history}")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")

    @classmethod
    def from_env(cls, environ=os.environ) -> ServeConfig:
        """Read FINFLOW_* environment variables (for ``panel serve``)."""

        def number(name, kind, default):
            text = environ.get(name)
            if text in (None, ""):
                return default
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"{name}={text!r} is not a valid {kind.__name__}") from None

        return cls(
            portfolio=environ.get("FINFLOW_PORTFOLIO") or None,
            tick=number("FINFLOW_TICK", float, 1.0),
            interval=number("FINFLOW_INTERVAL", float, 5.0),
            history=number("FINFLOW_HISTORY", int, 2000),
            seed=number("FINFLOW_SEED", int, None),
            always_on=environ.get("FINFLOW_ALWAYS_ON", "").lower() in ("1", "true", "yes"),
        )

    def load_portfolio(self) -> Portfolio:
        return Portfolio.from_csv(self.portfolio) if self.portfolio else Portfolio.sample()


def process_feed(config: ServeConfig) -> SharedFeed:
    """The one market of this process for ``config``; started once, shared by sessions."""
    portfolio_path = str(Path(config.portfolio).resolve()) if config.portfolio else None
    key = ("finflow_panel.app", portfolio_path, config.tick, config.history, config.seed)

    def make() -> SharedFeed:
        walk = config.load_portfolio().random_walk(seed=config.seed, dt=LIVE_DT)
        feed = SharedFeed(walk, tick=config.tick, history=config.history)
        feed.advance(min(WARMUP_TICKS, config.history))
        feed.always_on = config.always_on
        return feed

    return SharedFeed.for_process(key, make)


class SessionHeapPolicy:
    """Keep long-lived session objects out of the cyclic garbage collector's full scans.

    Every open session holds thousands of Bokeh and Panel objects. A full (generation 2)
    collection walks all of them: measured here with 300 sessions it paused the server
    for 1.7 s every ~20 s, which delayed ticks and every session's updates. Objects of
    sessions that are up are frozen (``gc.freeze``) a few seconds later - at most that
    long, even while more sessions keep arriving - so full scans see only new objects;
    a while after sessions close, the heap is unfrozen, collected once and frozen again,
    so nothing a closed session held survives.
    """

    def __init__(self, freeze_delay: float = 5.0, reclaim_delay: float = 20.0) -> None:
        self.freeze_delay = freeze_delay
        self.reclaim_delay = reclaim_delay
        self._freeze = None
        self._reclaim = None

    def _later(self, handle, delay, callback):
        from tornado.ioloop import IOLoop

        loop = IOLoop.current()
        if handle is not None:
            loop.remove_timeout(handle)
        return loop.call_later(delay, callback)

    def session_ready(self) -> None:
        trim_document(pn.state.curdoc)
        # Not pushed back by later sessions, so a steady stream of them is frozen too.
        if self._freeze is None:
            self._freeze = self._later(None, self.freeze_delay, self.freeze)

    def session_closed(self, session_context) -> None:
        self._reclaim = self._later(self._reclaim, self.reclaim_delay, self.reclaim)

    def freeze(self) -> None:
        self._freeze = None
        gc.freeze()

    def reclaim(self) -> None:
        self._reclaim = None
        gc.unfreeze()
        gc.collect()
        gc.freeze()


def trim_document(doc) -> None:
    """Drop the default values Bokeh materialized while walking ``doc``'s models.

    Reading an unset list or dict property (as Bokeh does for every model when it
    collects a document's references) creates an empty, change-tracked container and
    caches it on the model: ~20 per model, about half of a session's memory. The empty
    ones hold nothing: a value that was changed has moved out of this cache, and one
    read again is simply created again. Other cached defaults (a source's Selection, a
    renderer's CDSView: models the browser knows by id) must stay, and do.
    """
    if doc is None:
        return
    for model in doc.models:
        cache = getattr(model, "_unstable_default_values", None)
        if not cache:
            continue
        for name, value in list(cache.items()):
            if isinstance(value, (list, dict, set)) and not value:
                del cache[name]


HEAP_POLICY = SessionHeapPolicy()


def build_dashboard(config: ServeConfig) -> pn.viewable.Viewable:
    """One session's page: the dashboard in a template that loads nothing from outside."""
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.onload(HEAP_POLICY.session_ready)
        pn.state.on_session_destroyed(HEAP_POLICY.session_closed)
    feed = process_feed(config)
    dashboard = LiveDashboard(
        portfolio=config.load_portfolio(), feed=feed, interval=config.interval
    )
    template = pn.template.BootstrapTemplate(
        title="FinFlow",
        header_background="#1e3a8a",
        main=[dashboard],
    )
    return template


def index_page() -> pn.viewable.Viewable:
    """The home page, linking to the dashboard (as the original site did)."""
    return pn.template.BootstrapTemplate(
        title="FinFlow",
        header_background="#1e3a8a",
        main=[
            pn.pane.Markdown(
                "## Welcome to FinFlow\n\n"
                "A simulated market, streamed live to every visitor.\n\n"
                f'<a href="./{DASHBOARD_ROUTE}" id="dashboard-link">Open the live '
                "portfolio dashboard &rarr;</a>"
            )
        ],
    )


class FeedStatusHandler(RequestHandler):
    """``GET /api/feed``: the shared feed's state as JSON, for monitoring and tests."""

    def initialize(self, config: ServeConfig) -> None:
        self.config = config

    def get(self) -> None:
        feed = process_feed(self.config)
        if self.get_query_argument("gc", "0") == "1":
            HEAP_POLICY.reclaim()  # so that live_dashboards counts only what is really held
        # ru_maxrss is the peak; the current RSS comes from /proc where available.
        rss = _current_rss()
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(
            json.dumps(
                {
                    "symbols": list(feed.symbols),
                    "last_seq": feed.last_seq,
                    "subscribers": feed.subscriber_count,
                    "timer_running": feed.running,
                    "tick": feed.tick,
                    "tick_rate": feed.tick_rate,
                    "rss_bytes": rss,
                    "live_dashboards": len(LiveDashboard.instances),
                    "deliveries": dict(FanOut.current().routes),
                    "config": asdict(self.config),
                }
            )
        )


def _current_rss() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def serve(
    config: ServeConfig,
    port: int = 5006,
    address: str = "127.0.0.1",
    show: bool = False,
    allow_websocket_origin: list[str] | None = None,
    session_lifetime: float = 15.0,
    **kwargs,
):
    """Start Bokeh's Tornado server through Panel and block until it stops."""
    origins = list(allow_websocket_origin or [])
    if not origins:
        origins = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    milliseconds = max(100, int(session_lifetime * 1000))

    def dashboard_app() -> pn.viewable.Viewable:
        return build_dashboard(config)

    return pn.serve(
        {DASHBOARD_ROUTE: dashboard_app, "/": index_page},
        port=port,
        address=address,
        show=show,
        websocket_origin=origins,
        title="FinFlow",
        extra_patterns=[(r"/api/feed", FeedStatusHandler, {"config": config})],
        unused_session_lifetime_milliseconds=milliseconds,
        check_unused_sessions_milliseconds=milliseconds,
        **kwargs,
    )


if pn.state.served:
    build_dashboard(ServeConfig.from_env()).servable(title="FinFlow")
