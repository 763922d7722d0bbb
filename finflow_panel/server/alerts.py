"""Signed-in users' price alerts: kept in the store with their portfolios, checked on
the market for every user at once whether or not their tabs are open, logged in the
store when they fire, and told to the user's open dashboards and JSON API connections.

Every process of a deployment checks the same alerts on the same ticks (their feed
is one market); the store keeps each firing once, keyed by alert and tick.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from functools import partial

from tornado.ioloop import IOLoop

from ..feed import PORTFOLIO, Alert, AlertError, AlertEvent, check_alert
from ..store import EVERYONE, StoreError, StoreUnavailable
from ..store.base import new_id

__all__ = ["UserAlerts", "user_alerts"]

log = logging.getLogger(__name__)

Listener = Callable[[AlertEvent], None]


def _key(user: str) -> tuple:
    return ("user", user)


class UserAlerts:
    """The alerts of every signed-in user on one `PortfolioService`'s market."""

    def __init__(self, service) -> None:
        self.service = service
        self._listeners: dict[str, list[Listener]] = {}
        self._loop: IOLoop | None = None
        self._started = False
        self._tasks: set[asyncio.Task] = set()

    @property
    def book(self):
        return self.service.feed.alerts

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Load every user's alerts and follow changes to them (once per process)."""
        if self._started:
            return
        self._started = True
        self._loop = IOLoop.current()
        store = self.service.store
        store.subscribe(EVERYONE, self._on_store_change)
        try:
            owners = await self.service._run(store.alert_owners)
        except StoreUnavailable as error:
            log.warning("users' alerts not loaded: %s (each loads when its user returns)", error)
            return
        for owner in owners:
            await self.load(owner)

    def _on_store_change(self, owner: str) -> None:
        # From a store's thread (Redis pub/sub) or the loop itself.
        if self._loop is not None:
            self._loop.add_callback(self._spawn, self.load(owner))

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def load(self, user: str) -> None:
        """Make the book hold exactly ``user``'s stored alerts, on their portfolios'
        current holdings. Alerts already held keep their state (an alert that has
        fired stays quiet until its condition has been false)."""
        store = self.service.store
        try:
            records = await self.service._run(store.alerts, user)
            wants_portfolios = any(r.get("target") == PORTFOLIO for r in records)
            saved = await self.service._run(store.portfolios, user) if wants_portfolios else []
        except StoreUnavailable as error:
            log.warning("alerts of %s not loaded: %s", user, error)
            return
        book, key = self.book, _key(user)
        holdings = {p.portfolio_id: {x.symbol: x.quantity for x in p.positions} for p in saved}
        held = {alert.alert_id for alert in book.alerts(key)}
        wanted = set()
        for record in records:
            alert_id, portfolio_id = record.get("alert_id"), record.get("portfolio_id")
            weights = holdings.get(portfolio_id) if record.get("target") == PORTFOLIO else None
            if record.get("target") == PORTFOLIO and weights is None:
                continue  # its portfolio was deleted: nothing to value
            wanted.add(alert_id)
            try:
                if weights is not None:
                    book.set_weights(key, weights, portfolio_id)
                if alert_id not in held:
                    book.add(
                        record["target"], record["condition"], record["value"],
                        owner=key, portfolio_id=portfolio_id, alert_id=alert_id,
                        callback=partial(_fired, weakref.ref(self), user),
                    )  # fmt: skip
            except (AlertError, KeyError) as error:
                log.warning("alert %s of %s not checked: %s", alert_id, user, error)
        for alert_id in held - wanted:
            book.remove(alert_id)

    # -- what a user does -------------------------------------------------------------

    def alerts(self, user: str) -> list[Alert]:
        return self.book.alerts(_key(user))

    async def add(
        self, user: str, target, condition, value, portfolio_id: str | None = None
    ) -> Alert:
        """Keep and check a new alert; AlertError (naming the field) if it is invalid,
        StoreUnavailable if the store cannot keep it (nothing is added then)."""
        target, condition, number = check_alert(target, condition, value, self.book.symbols)
        if target == PORTFOLIO:
            if not isinstance(portfolio_id, str) or not portfolio_id:
                raise AlertError("Target: Portfolio needs one of your portfolios")
            if await self.service._run(self.service.store.get, user, portfolio_id) is None:
                raise AlertError("Target: no such portfolio")
        else:
            portfolio_id = None
        if len(self.alerts(user)) >= self.book.max_per_owner:
            raise AlertError(f"at most {self.book.max_per_owner} alerts each: remove one first")
        alert = Alert(new_id(), target, condition, number, portfolio_id)
        try:
            await self.service._run(self.service.store.add_alert, user, alert.to_json())
        except StoreError as error:
            raise AlertError(str(error)) from None
        await self.load(user)
        return alert

    async def remove(self, user: str, alert_id: str) -> bool:
        removed = await self.service._run(self.service.store.remove_alert, user, alert_id)
        if removed:
            self.book.remove(alert_id)
        return removed

    async def history(self, user: str) -> list[dict]:
        """``user``'s fired alerts, newest first (also those fired while they were away)."""
        return await self.service._run(self.service.store.alert_log, user)

    def listen(self, user: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on the loop when one of ``user``'s alerts fires."""
        self._listeners.setdefault(user, []).append(listener)

        def stop() -> None:
            listeners = self._listeners.get(user, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._listeners.pop(user, None)

        return stop

    # -- firing -----------------------------------------------------------------------

    def _on_fire(self, user: str, event: AlertEvent) -> None:
        self._spawn(self._log(user, event))
        for listener in list(self._listeners.get(user, ())):
            try:
                listener(event)
            except Exception:
                log.exception("telling %s of an alert failed", user)

    async def _log(self, user: str, event: AlertEvent) -> None:
        try:
            await self.service._run(self.service.store.log_alert, user, event.to_json())
        except StoreUnavailable as error:
            log.warning("alert log of %s not written: %s", user, error)


def _fired(alerts_ref, user: str, event: AlertEvent) -> None:
    alerts = alerts_ref()
    if alerts is not None:
        alerts._on_fire(user, event)


_by_service: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def user_alerts(service) -> UserAlerts:
    """The one `UserAlerts` of a service (so of a process and its market)."""
    alerts = _by_service.get(service)
    if alerts is None:
        alerts = _by_service[service] = UserAlerts(service)
    return alerts
