"""The web app: ``finflow-panel serve`` or ``panel serve finflow_panel/app.py``.

Under ``panel serve`` this file runs afresh for every session; it then hands over to
the imported module ``finflow_panel.app``, whose state (the portfolio, read once, the
market and the heap policy) lives once per process. Options come from environment
variables there: FINFLOW_PORTFOLIO, FINFLOW_TICK, FINFLOW_INTERVAL, FINFLOW_HISTORY,
FINFLOW_SEED, FINFLOW_ALWAYS_ON, FINFLOW_REDIS, FINFLOW_UNIVERSE, FINFLOW_REPLAY and
FINFLOW_REPLAY_LOOP.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import partial

import jinja2
import pandas as pd
import panel as pn
from bokeh.application.handlers.handler import Handler
from bokeh.settings import settings
from panel.io.application import build_applications
from panel.reactive import ReactiveMetaBase
from tornado.ioloop import IOLoop
from tornado.process import task_id
from tornado.web import RequestHandler

from finflow_panel.feed import MAX_HISTORY, PORTFOLIO, RedisFeed, SharedFeed
from finflow_panel.feed.redis_feed import redacted
from finflow_panel.model import Holding, Portfolio, Universe
from finflow_panel.model.history import Calibration, calibrate, load_prices, load_replay
from finflow_panel.server import SessionAdmission, ValidateFirstDocument
from finflow_panel.server.alerts import user_alerts
from finflow_panel.server.api import PortfolioService, api_routes
from finflow_panel.server.ws_api import ws_routes
from finflow_panel.sim import Replay
from finflow_panel.store import DEFAULT_STORE, PortfolioStore, open_store
from finflow_panel.ui import LiveDashboard
from finflow_panel.ui.dashboard import MAX_HOLDINGS, RESERVED_COLUMNS, check_portfolio
from finflow_panel.ui.editor import PortfolioEditor
from finflow_panel.ui.explore import WhatIfExplorer
from finflow_panel.ui.fanout import FanOut

__all__ = [
    "MAX_MESSAGE_BYTES",
    "ServeConfig",
    "build_dashboard",
    "build_explorer",
    "index_page",
    "process_feed",
    "process_portfolio",
    "process_universe",
    "serve",
]

DASHBOARD_ROUTE = "portfolio"
EXPLORE_ROUTE = "explore"
#: Backdated ticks a new market starts with, so the first visitor sees a chart at once.
WARMUP_TICKS = 120
#: Each live tick simulates one trading minute (252 days x 390 minutes a year): moves
#: small enough to look like a market, large enough to see.
LIVE_DT = 1.0 / (252 * 390)
#: The largest websocket message a client may send; a larger one closes the connection
#: (code 1009) before it is parsed on the loop every session shares. Bokeh's default is
#: 20 MB; a browser's own messages (clicks, a changed interval) are a few hundred bytes.
MAX_MESSAGE_BYTES = 1 << 20

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    """Options of the app, validated before any server starts."""

    portfolio: str | None = None
    tick: float = 1.0
    interval: float = 5.0
    history: int = 2000
    seed: int | None = None
    always_on: bool = False
    #: One market for every process on this Redis (``redis://``, ``rediss://`` or
    #: ``unix://`` URL); None: this process's own market, in memory.
    redis: str | None = None
    #: The market's universe (CSV: symbol, name, price, drift, volatility); None: the
    #: bundled one. The server's portfolio's symbols join it if it lacks them.
    universe: str | None = None
    #: Where signed-in users' portfolios are kept; None: the ``redis`` Redis if set,
    #: else ``sqlite:///finflow.db``.
    store: str | None = None
    #: The credentials file for sign-in (hashed); None: everyone is anonymous.
    basic_auth: str | None = None
    #: Panel's OAuth provider name, for sign-in through an identity provider instead.
    oauth_provider: str | None = None
    #: A price history (CSV or Parquet) the market plays back, one row per tick, instead
    #: of simulating; its symbols are the market's.
    replay: str | None = None
    #: Start the replay again after its last row (sequence numbers keep increasing).
    replay_loop: bool = False

    @property
    def sign_in(self) -> bool:
        """Whether users sign in (and keep portfolios of their own)."""
        return self.basic_auth is not None or self.oauth_provider is not None

    @property
    def store_url(self) -> str:
        return self.store or self.redis or DEFAULT_STORE

    def __post_init__(self) -> None:
        if not 0.01 <= self.tick <= 3600:
            raise ValueError(f"tick must be between 0.01 and 3600 seconds, got {self.tick}")
        if not 0.1 <= self.interval <= 60:
            raise ValueError(f"interval must be between 0.1 and 60 seconds, got {self.interval}")
        if not 1 <= self.history <= MAX_HISTORY:
            raise ValueError(
                f"history must be between 1 and {MAX_HISTORY:,} ticks, got {self.history:,}"
            )
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if self.replay_loop and not self.replay:
            raise ValueError("--replay-loop needs --replay FILE")
        if self.replay and self.universe:
            raise ValueError(
                "--universe and --replay cannot be combined: a replay's market quotes the "
                "file's symbols"
            )
        if self.redis is not None and not self.redis.startswith(_REDIS_SCHEMES):
            raise ValueError(
                f"bad Redis URL {redacted(self.redis)!r}: use redis://HOST:PORT/DB (or rediss:// or unix://)"
            )

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

        def flag(name):
            text = environ.get(name, "").strip().lower()
            if text not in _TRUE + _FALSE:
                raise ValueError(
                    f"{name}={environ[name]!r} is not a yes/no value "
                    "(use 1/0, true/false, yes/no or on/off)"
                )
            return text in _TRUE

        return cls(
            portfolio=environ.get("FINFLOW_PORTFOLIO") or None,
            tick=number("FINFLOW_TICK", float, 1.0),
            interval=number("FINFLOW_INTERVAL", float, 5.0),
            history=number("FINFLOW_HISTORY", int, 2000),
            seed=number("FINFLOW_SEED", int, None),
            always_on=flag("FINFLOW_ALWAYS_ON"),
            redis=environ.get("FINFLOW_REDIS") or None,
            universe=environ.get("FINFLOW_UNIVERSE") or None,
            replay=environ.get("FINFLOW_REPLAY") or None,
            replay_loop=flag("FINFLOW_REPLAY_LOOP"),
        )

    def load_portfolio(self) -> Portfolio:
        """Read and check the portfolio: ValueError (one line) unless every session of
        the app can show it on this config's market."""
        if self.portfolio:
            portfolio = Portfolio.from_csv(self.portfolio)
        elif self.replay:
            portfolio = replay_portfolio(process_replay(self), self.replay)
        else:
            portfolio = Portfolio.sample()
        where = f"{self.portfolio}: " if self.portfolio else ""
        try:
            symbols = process_replay(self).symbols if self.replay else None
            check_portfolio(portfolio, symbols)
            portfolio.random_walk(seed=self.seed, dt=LIVE_DT)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
        return portfolio


_histories: dict[ServeConfig, pd.DataFrame] = {}
_replays: dict[ServeConfig, Replay] = {}


def process_history(config: ServeConfig) -> pd.DataFrame:
    """The price history ``config`` replays (a `load_prices` table), read once per
    process (ValueError naming the file, the row and the problem). Its warnings (gaps
    filled) are logged."""
    prices = _histories.get(config)
    if prices is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            prices = load_prices(config.replay)
        for warning in caught:
            log.warning("%s", warning.message)
        clash = [s for s in prices.columns if s in RESERVED_COLUMNS]
        if clash:
            raise ValueError(
                f"{config.replay}: symbol(s) {', '.join(clash)} clash with the chart's own "
                f"columns ({', '.join(RESERVED_COLUMNS)})"
            )
        _histories[config] = prices
    return prices


def process_replay(config: ServeConfig) -> Replay:
    """The replay of ``config``'s price history, made once per process."""
    replay = _replays.get(config)
    if replay is None:
        replay = _replays[config] = load_replay(process_history(config), config.replay_loop)
    return replay


def replay_portfolio(replay: Replay, path: str) -> Portfolio:
    """One unit of each replayed symbol, valued against the file's first prices."""
    first = replay.rows[0]
    holdings = tuple(
        Holding(symbol, 1.0, float(price))
        for symbol, price in zip(replay.symbols, first, strict=True)
    )
    if len(holdings) > MAX_HOLDINGS:
        raise ValueError(
            f"{path}: {len(holdings)} symbols is more than a dashboard shows (at most "
            f"{MAX_HOLDINGS}); choose the holdings with --portfolio FILE"
        )
    return Portfolio(holdings, portfolio_id="replay", name=f"Replay of {os.path.basename(path)}")


# Read once per process: a file edited under a running server must not give new
# sessions other holdings than old ones (or break them, for a symbol the market lacks).
_portfolios: dict[ServeConfig, Portfolio] = {}


def process_portfolio(config: ServeConfig) -> Portfolio:
    """The portfolio of ``config``, read and checked once per process (ValueError)."""
    portfolio = _portfolios.get(config)
    if portfolio is None:
        portfolio = _portfolios[config] = config.load_portfolio()
    return portfolio


_universes: dict[ServeConfig, Universe] = {}


def process_universe(config: ServeConfig) -> Universe:
    """Every symbol the market of ``config`` quotes, read once per process (ValueError)."""
    universe = _universes.get(config)
    if universe is None:
        if config.replay:
            replay = process_replay(config)
            base = Universe(replay.symbols, replay.symbols, replay.rows[0])
        elif config.universe:
            base = Universe.from_csv(config.universe)
        else:
            base = Universe.default()
        clash = [s for s in base.symbols if s in RESERVED_COLUMNS]
        if clash:
            raise ValueError(
                f"{config.universe}: symbol(s) {', '.join(clash)} clash with the chart's own "
                f"columns ({', '.join(RESERVED_COLUMNS)})"
            )
        universe = _universes[config] = base.including(process_portfolio(config))
    return universe


def process_feed(config: ServeConfig) -> SharedFeed:
    """The one market of this process for ``config``; started once, shared by sessions."""

    def make() -> SharedFeed:
        if config.replay:
            # Each process plays its own copy; with Redis only the leader's is stepped.
            walk, warmup = process_replay(config), 0
            process_universe(config)  # the portfolio's symbols checked against the file's
        else:
            walk = process_universe(config).random_walk(seed=config.seed, dt=LIVE_DT)
            warmup = min(WARMUP_TICKS, config.history)
        if config.redis:
            # The market is Redis's: this process follows it (and steps it when elected)
            # from its event loop, whether or not it has sessions.
            feed = RedisFeed(
                walk, config.redis, tick=config.tick, history=config.history, warmup=warmup,
            )  # fmt: skip
            feed.start()
            return feed
        feed = SharedFeed(walk, tick=config.tick, history=config.history)
        if warmup:
            feed.advance(warmup)
        feed.always_on = config.always_on
        return feed

    return SharedFeed.for_process(("finflow_panel.app", config), make)


_stores: dict[str, PortfolioStore] = {}
_services: dict[ServeConfig, PortfolioService] = {}


def process_store(config: ServeConfig) -> PortfolioStore:
    """Users' portfolios for ``config``: opened once per process, on first use (after
    ``--num-procs`` forks, so no connection is shared between processes)."""
    url = config.store_url
    store = _stores.get(url)
    if store is None:
        store = _stores[url] = open_store(url)
    return store


def process_service(config: ServeConfig) -> PortfolioService:
    """Whose portfolios, valued on this process's market: one per process and config."""
    service = _services.get(config)
    if service is None:
        service = _services[config] = PortfolioService(
            process_universe(config),
            feed=partial(process_feed, config),
            server_portfolio=process_portfolio(config),
            store=partial(process_store, config) if config.sign_in else None,
        )
    return service


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

    def __init__(self, freeze_delay: float = 5.0, reclaim_delay: float = 20.0, loop=None):
        self.freeze_delay = freeze_delay
        self.reclaim_delay = reclaim_delay
        self._loop = loop
        self._freeze = None
        self._reclaim = None

    def _later(self, delay, callback):
        from tornado.ioloop import IOLoop

        return (self._loop or IOLoop.current()).call_later(delay, callback)

    # Neither timer is pushed back by later sessions: a steady stream of new sessions is
    # frozen too, and with sessions closing every few seconds the reclaim still runs
    # within ``reclaim_delay`` of any close (pushed back on every close, it never ran).

    def session_ready(self) -> None:
        trim_document(pn.state.curdoc)
        if self._freeze is None:
            self._freeze = self._later(self.freeze_delay, self.freeze)

    def session_closed(self, session_context) -> None:
        if self._reclaim is None:
            self._reclaim = self._later(self.reclaim_delay, self.reclaim)

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


#: Dashboards this process has built for server sessions. Under ``--num-procs`` a page's
#: GET and its websocket may reach different processes, each building the session.
SESSIONS_BUILT = Counter()


#: Panel's notifications' script and style, served by Panel from its own bundle.
_NOTYF = "static/extensions/panel/bundled/notificationarea/notyf@3/notyf.min"

#: Panel's page, sized to the device: without a viewport tag a phone lays the page out
#: 980 px wide and shrinks it to fit. It also loads Notyf, which alert toasts (Panel's
#: notifications, added to a page once an alert exists) need before they are shown: a
#: cached static file for the browser, nothing for the server per session.
#: Compiled once; each session's document points at it.
PAGE_TEMPLATE = jinja2.Environment().from_string(
    "{% extends base %}{% block preamble %}{{ super() }}"
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    f'<link rel="stylesheet" href="{_NOTYF}.css"><script defer src="{_NOTYF}.js"></script>'
    "{% endblock %}"
)


#: URL query arguments that set the charts' options: a link opens the page as it was
#: shared (``/portfolio?chart=Candles&indicators=SMA,Bollinger&prices=price``).
_CHART_ARGS = {
    "chart": ("chart", str),
    "series": ("series", str),
    "bar": ("bar_ticks", int),
    "indicators": ("indicators", lambda text: [i for i in text.split(",") if i]),
    "window": ("window", int),
    "prices": ("price_view", {"percent": "% change", "price": "Price"}.__getitem__),
}


def chart_options(args: dict) -> dict:
    """`LiveDashboard` chart options from a page's query arguments; one that is not
    valid is left out (with a log line): a bad link still opens the dashboard."""
    options = {}
    for key, (name, parse) in _CHART_ARGS.items():
        raw = (args.get(key) or [None])[0]
        if raw is None:
            continue
        text = raw.decode(errors="replace")[:200] if isinstance(raw, bytes) else str(raw)[:200]
        try:
            value = parse(text)
            LiveDashboard.param[name]._validate(value)
        except (KeyError, TypeError, ValueError) as error:
            log.info("ignored chart option %s=%r: %s", key, text, error)
            continue
        options[name] = value
    return options


def build_dashboard(config: ServeConfig) -> pn.viewable.Viewable:
    """One session's page: the dashboard, loading nothing from outside."""
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        SESSIONS_BUILT["dashboard"] += 1
        pn.state.curdoc.template = PAGE_TEMPLATE
        pn.state.onload(HEAP_POLICY.session_ready)
        pn.state.on_session_destroyed(HEAP_POLICY.session_closed)
        # Panel's browser-info model (language, timezone, ...) is one more model per
        # document and seven messages from every page as it opens; nothing here reads it.
        pn.config.browser_info = False
        # PAGE_TEMPLATE loads Notyf, which Panel's notifications (alert toasts) need:
        # Panel would otherwise warn that the 'notifications' extension was not loaded.
        ReactiveMetaBase._loaded_extensions.add("notifications")
    # The dashboard is the page: a template would cost every session about a third
    # more server CPU to open (its own models, stylesheets and per-session rendering).
    portfolio = process_portfolio(config)
    options = chart_options(pn.state.session_args if pn.state.curdoc is not None else {})
    if options.get("series", PORTFOLIO) not in (PORTFOLIO, *portfolio.symbols):
        del options["series"]
    dashboard = LiveDashboard(
        portfolio=portfolio, feed=process_feed(config), interval=config.interval, **options
    )
    if config.sign_in and pn.state.curdoc is not None and pn.state.user:
        # The user's own portfolios load once the page is up (the store is never waited
        # on while a session is built); until then it shows the server's.
        service = process_service(config)
        editor = PortfolioEditor(dashboard, service, pn.state.user)
        dashboard.alerts_card.sign_in(user_alerts(service), pn.state.user)
        requested = (pn.state.session_args.get("portfolio") or [b""])[0]
        editor.attach(pn.state.curdoc, requested.decode(errors="replace")[:64] or None)
    return dashboard


_calibrations: dict[ServeConfig, Calibration | None] = {}


def process_calibration(config: ServeConfig) -> Calibration | None:
    """The replayed history's calibration (None without a replay, or when it is too
    short to estimate from), worked out once per process."""
    if config not in _calibrations:
        calibration = None
        if config.replay:
            try:
                calibration = calibrate(process_history(config))
            except ValueError as error:
                log.warning("what-ifs use the holdings' own parameters: %s", error)
        _calibrations[config] = calibration
    return _calibrations[config]


def build_explorer(config: ServeConfig) -> pn.viewable.Viewable:
    """One session's what-if explorer: the server's portfolio from the market's newest
    prices, with a replayed history's estimates where there is one."""
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.curdoc.template = PAGE_TEMPLATE
        pn.config.browser_info = False
    portfolio = process_portfolio(config)
    feed = process_feed(config)
    start = feed.prices[[feed.symbols.index(s) for s in portfolio.symbols]]
    return WhatIfExplorer(
        portfolio=portfolio, calibration=process_calibration(config), start_prices=start
    )


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
                "portfolio dashboard &rarr;</a>\n\n"
                f'<a href="./{EXPLORE_ROUTE}" id="explore-link">Explore what-ifs: the '
                "portfolio's Monte Carlo future &rarr;</a>"
            )
        ],
    )


class FeedStatusHandler(RequestHandler):
    """``GET /api/feed``: the shared feed's state as JSON, for monitoring and tests.

    Anonymous, so it only reads: nothing reachable from outside may start work that
    costs every session (a full collection on the shared loop, say), and nothing it
    shows lets anyone predict the market (the seed) or learn the server's files.
    """

    def initialize(self, config: ServeConfig) -> None:
        self.config = config

    def get(self) -> None:
        feed = process_feed(self.config)
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
                    "sessions_built": SESSIONS_BUILT["dashboard"],
                    "deliveries": dict(FanOut.current().routes),
                    # Which of --num-procs processes answered (None: a single process).
                    "process": task_id(),
                    **_backend_status(feed),
                }
            )
        )


def _backend_status(feed: SharedFeed) -> dict:
    """Where the market comes from; with Redis, this process's part in it (no URL: it
    may carry a password)."""
    source = {"source": "replay" if isinstance(feed.source, Replay) else "random walk"}
    if isinstance(feed.source, Replay):
        source.update(finished=feed.finished, market_date=feed.label(feed.last_seq))
    if not isinstance(feed, RedisFeed):
        return {"backend": "memory", **source}
    return {
        **source,
        "backend": "redis",
        "leader": feed.is_leader,
        "stalled": feed.stalled,
        "redis_commands": feed.redis_commands,
    }


def _current_rss() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _AtServerStart(Handler):
    """Call ``start()`` when the server starts (Bokeh's ``on_server_loaded``), in every
    process (after the fork, with ``--num-procs``): not on the first visitor."""

    def __init__(self, start) -> None:
        super().__init__()
        self._start = start

    def modify_document(self, doc) -> None:
        """Nothing to add to a session's document."""

    def on_server_loaded(self, server_context) -> None:
        self._start()


def _watch_users_alerts(config: ServeConfig) -> None:
    """Check signed-in users' alerts from the start, whether or not anyone is here."""
    IOLoop.current().add_callback(user_alerts(process_service(config)).start)


def serve(
    config: ServeConfig,
    port: int = 5006,
    address: str = "127.0.0.1",
    show: bool = False,
    allow_websocket_origin: list[str] | None = None,
    session_lifetime: float = 15.0,
    cookie_secret: str | None = None,
    oauth: dict | None = None,
    **kwargs,
):
    """Start Bokeh's Tornado server through Panel and block until it stops.

    With ``config.basic_auth`` users sign in against that (hashed) credentials file;
    with ``config.oauth_provider`` through Panel's OAuth (``oauth``: its other options).
    Either needs ``cookie_secret``. The home page never needs a sign-in.
    """
    origins = list(allow_websocket_origin or [])
    if not origins:
        origins = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    if config.basic_auth:
        from finflow_panel.server.auth import Credentials, HashedBasicAuthProvider

        kwargs["auth_provider"] = HashedBasicAuthProvider(Credentials(config.basic_auth))
    elif config.oauth_provider:
        kwargs.update(oauth or {}, oauth_provider=config.oauth_provider)
        kwargs.setdefault("oauth_guest_endpoints", ["/"])
    if config.sign_in:
        if not cookie_secret:
            raise ValueError("sign-in needs a cookie secret (--cookie-secret)")
        kwargs["cookie_secret"] = cookie_secret
    allowed = {origin.lower() for origin in origins}
    milliseconds = max(100, int(session_lifetime * 1000))

    def dashboard_app() -> pn.viewable.Viewable:
        return build_dashboard(config)

    def explore_app() -> pn.viewable.Viewable:
        return build_explorer(config)

    # No Location model for the dashboard (it reads no URL): one model less in every
    # session. The home page's template needs one.
    apps = {
        **build_applications({"/": index_page}, title="FinFlow"),
        **build_applications({DASHBOARD_ROUTE: dashboard_app}, title="FinFlow", location=False),
        **build_applications(
            {EXPLORE_ROUTE: explore_app}, title="FinFlow \u00b7 What if?", location=False
        ),
    }
    apps[f"/{DASHBOARD_ROUTE}"].add(SessionAdmission())
    apps[f"/{EXPLORE_ROUTE}"].add(SessionAdmission())
    if config.redis:
        # Follow (and stand for leading) the market from the start.
        apps[f"/{DASHBOARD_ROUTE}"].add(_AtServerStart(partial(process_feed, config)))
    if config.sign_in:
        apps[f"/{DASHBOARD_ROUTE}"].add(_AtServerStart(partial(_watch_users_alerts, config)))
    # Each app's documents share one structure: check the first, not every session's.
    settings.perform_document_validation.set_value(False)
    for app in apps.values():
        app.add(ValidateFirstDocument())
    return pn.serve(
        apps,
        port=port,
        address=address,
        show=show,
        websocket_origin=origins,
        title="FinFlow",
        extra_patterns=[
            (r"/api/feed", FeedStatusHandler, {"config": config}),
            *api_routes(process_service(config), lambda: allowed),
            *ws_routes(process_service(config), lambda: allowed),
        ],
        unused_session_lifetime_milliseconds=milliseconds,
        check_unused_sessions_milliseconds=milliseconds,
        websocket_max_message_size=MAX_MESSAGE_BYTES,
        **kwargs,
    )


if pn.state.served and __name__ != "finflow_panel.app":
    # Run as a script by ``panel serve``: use the imported module, whose state is the
    # process's, not this per-session copy's.
    from finflow_panel import app as _app

    _app.build_dashboard(_app.ServeConfig.from_env()).servable(title="FinFlow")
