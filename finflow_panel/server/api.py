"""Users' portfolios as a service (for the dashboard and the JSON API) and the portfolio
API's routes: ``/api/portfolios`` and ``/api/portfolios/ID``.

Every read and write names the signed-in user, and the store finds a portfolio only for
its owner: another user's id answers 404 exactly as an id that never existed. Without
sign-in configured everyone is anonymous and sees the server's portfolio, read-only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import numpy as np
from panel.config import config
from tornado.web import HTTPError, RequestHandler

from ..model import Portfolio, PortfolioError, Universe
from ..store import (
    PortfolioStore,
    Position,
    SavedPortfolio,
    StoreError,
    StoreUnavailable,
    parse_portfolio,
)

__all__ = ["PortfolioAPIHandler", "PortfolioService", "PortfoliosAPIHandler", "signed_in_user"]

log = logging.getLogger(__name__)

#: The largest request body the API reads.
MAX_BODY_BYTES = 64 * 1024


class PortfolioService:
    """Whose portfolios, as stored and as valued on the live market.

    ``store`` is None without sign-in: everyone sees ``server_portfolio``, read-only.
    Store calls run on a small thread pool: a slow store never holds the event loop.
    """

    def __init__(
        self,
        universe: Universe,
        feed: Callable,
        server_portfolio: Portfolio,
        store: Callable[[], PortfolioStore] | None = None,
    ) -> None:
        self.universe = universe
        self._feed = feed
        self.server_portfolio = server_portfolio
        self._store = store
        self._executor = ThreadPoolExecutor(4, thread_name_prefix="finflow-store")

    @property
    def personal(self) -> bool:
        """Whether users keep portfolios of their own (sign-in is configured)."""
        return self._store is not None

    @property
    def store(self) -> PortfolioStore:
        return self._store()

    @property
    def feed(self):
        """The market the portfolios are valued on (this process's shared feed)."""
        return self._feed()

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def starter(self) -> tuple[str, tuple[Position, ...]]:
        """What a new user starts with: a copy of the server's portfolio."""
        portfolio = self.server_portfolio
        return portfolio.name, tuple(
            Position(h.symbol, h.quantity, h.cost_basis) for h in portfolio.holdings
        )

    def parse(self, body) -> tuple[str, tuple[Position, ...]]:
        return parse_portfolio(body, self.universe.symbols)

    async def portfolios(self, user: str | None) -> list[Portfolio]:
        if not self.personal:
            return [self.server_portfolio]
        saved = await self._run(self.store.ensure_user, user, self.starter)
        return [self.to_portfolio(s) for s in saved]

    async def portfolio(self, user: str | None, portfolio_id: str) -> Portfolio | None:
        if not self.personal:
            server = self.server_portfolio
            return server if portfolio_id == server.portfolio_id else None
        saved = await self._run(self.store.get, user, portfolio_id)
        return None if saved is None else self.to_portfolio(saved)

    async def create(self, user: str, name: str, positions) -> Portfolio:
        return self.to_portfolio(await self._run(self.store.create, user, name, positions))

    async def replace(self, user: str, portfolio_id: str, name: str, positions):
        saved = await self._run(self.store.replace, user, portfolio_id, name, positions)
        return None if saved is None else self.to_portfolio(saved)

    async def delete(self, user: str, portfolio_id: str) -> bool:
        return await self._run(self.store.delete, user, portfolio_id)

    def to_portfolio(self, saved: SavedPortfolio) -> Portfolio:
        """A saved portfolio as the model's, named and priced from the universe."""
        holdings = tuple(
            self.universe.holding(p.symbol, p.quantity, p.cost_basis)
            for p in saved.positions
            if p.symbol in self.universe  # a symbol the universe dropped is not shown
        )
        return Portfolio(holdings, portfolio_id=saved.portfolio_id, name=saved.name)

    def snapshot(self, portfolio: Portfolio) -> dict:
        """The portfolio valued at the market's newest tick, in the original message
        shape (plus the tick's ``seq`` and ``timestamp`` in epoch ms)."""
        feed = self.feed
        batch = feed.latest(1)
        if not len(batch):
            raise StoreUnavailable("the market has no prices yet")
        columns = np.array([feed.symbols.index(s) for s in portfolio.symbols])
        prices = batch.prices[-1:, columns]
        snapshot = portfolio.snapshot(prices, feed.open_prices[columns])
        snapshot["seq"] = int(batch.last_seq)
        snapshot["timestamp"] = float(batch.time[-1])
        return snapshot


def signed_in_user(handler: RequestHandler, service: PortfolioService) -> str | None:
    """Who sent the request: None without sign-in configured; PermissionError when it
    is and the request carries no valid signed-in cookie."""
    if not service.personal:
        return None
    # Panel's signed cookie, as its own pages read it.
    name = handler.get_secure_cookie("user", max_age_days=config.oauth_expiry)
    if not name:
        raise PermissionError("sign in first")
    return name.decode()


class _APIHandler(RequestHandler):
    """JSON in and out; who is asking, where from, and what they send, all checked."""

    def initialize(self, service: PortfolioService, origins: Callable[[], set[str]]) -> None:
        self.service = service
        self._origins = origins

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs) -> None:
        reason = getattr(kwargs.get("exc_info", (None, None))[1], "log_message", None)
        self.finish(json.dumps({"error": reason or self._reason}))

    def fail(self, status: int, message: str):
        raise HTTPError(status, log_message=message)

    def user(self) -> str | None:
        """The signed-in user; 401 when sign-in is configured and nobody is."""
        try:
            return signed_in_user(self, self.service)
        except PermissionError as error:
            self.fail(401, str(error))

    def check_write(self) -> None:
        """State changes: same-origin (or an allowed origin) JSON only, bounded."""
        origin = self.request.headers.get("Origin")
        if origin is not None:
            host = urlsplit(origin).netloc.lower()
            allowed = {self.request.host.lower(), *self._origins()}
            if host not in allowed:
                self.fail(403, f"requests from origin {origin[:100]!r} are not allowed")
        if not self.service.personal:
            self.fail(403, "sign-in is not enabled on this server: its portfolio is read-only")

    def body_json(self):
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            self.fail(415, "send the portfolio as application/json")
        if len(self.request.body) > MAX_BODY_BYTES:
            self.fail(413, f"the body is over {MAX_BODY_BYTES // 1024} KiB")
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as error:
            self.fail(400, f"the body is not JSON: {error}"[:200])

    def parsed(self):
        try:
            return self.service.parse(self.body_json())
        except StoreError as error:
            self.fail(400, str(error))

    async def guarded(self, coroutine):
        try:
            return await coroutine
        except StoreUnavailable as error:
            log.warning("portfolio API: %s", error)
            self.fail(503, str(error))
        except (StoreError, PortfolioError) as error:
            self.fail(400, str(error))

    def send(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, allow_nan=False))


class PortfoliosAPIHandler(_APIHandler):
    """``GET /api/portfolios`` lists the user's; ``POST`` creates one (201)."""

    async def get(self) -> None:
        portfolios = await self.guarded(self.service.portfolios(self.user()))
        self.send([{"portfolio_id": p.portfolio_id, "portfolio_name": p.name} for p in portfolios])

    async def post(self) -> None:
        user = self.user()
        self.check_write()
        name, positions = self.parsed()
        portfolio = await self.guarded(self.service.create(user, name, positions))
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{portfolio.portfolio_id}")
        self.send(self.service.snapshot(portfolio), status=201)


class PortfolioAPIHandler(_APIHandler):
    """``GET``, ``PUT`` and ``DELETE /api/portfolios/ID``: the user's own only."""

    async def _own(self, portfolio_id: str) -> Portfolio:
        portfolio = await self.guarded(self.service.portfolio(self.user(), portfolio_id))
        if portfolio is None:
            self.fail(404, "no such portfolio")
        return portfolio

    async def get(self, portfolio_id: str) -> None:
        self.send(self.service.snapshot(await self._own(portfolio_id)))

    async def put(self, portfolio_id: str) -> None:
        user = self.user()
        self.check_write()
        name, positions = self.parsed()
        portfolio = await self.guarded(self.service.replace(user, portfolio_id, name, positions))
        if portfolio is None:
            self.fail(404, "no such portfolio")
        self.send(self.service.snapshot(portfolio))

    async def delete(self, portfolio_id: str) -> None:
        user = self.user()
        self.check_write()
        if not await self.guarded(self.service.delete(user, portfolio_id)):
            self.fail(404, "no such portfolio")
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()


def api_routes(service: PortfolioService, origins: Callable[[], set[str]]) -> list[tuple]:
    options = {"service": service, "origins": origins}
    return [
        (r"/api/portfolios/?", PortfoliosAPIHandler, options),
        (r"/api/portfolios/([A-Za-z0-9_-]{1,64})", PortfolioAPIHandler, options),
    ]
