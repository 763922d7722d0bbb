"""Price alerts for everyone on a feed, checked on every tick in one numpy pass.

An alert watches a *target* (a symbol's price, or a portfolio's total value) for a
*condition*: ``above`` or ``below`` a value, or ``moves by %`` (at least that many per
cent either way since the day's open). It fires on the first tick its condition is true,
then re-arms only once the condition has been false again, so a price sitting above the
line fires once, not every tick. An alert already true when added fires on the next
tick.

`AlertBook` holds every alert of a feed in flat arrays: the target's row in a vector of
"series" (each symbol's price, then each registered portfolio's value), the condition
code, the threshold and the armed flag. One tick is then a handful of numpy operations
over all alerts, whatever their number or owners; only the few that fire reach Python.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CONDITIONS",
    "MAX_ALERTS_PER_OWNER",
    "PORTFOLIO",
    "Alert",
    "AlertBook",
    "AlertError",
    "AlertEvent",
    "SessionAlerts",
    "SignedInAlerts",
    "check_alert",
]

log = logging.getLogger(__name__)

#: The target naming a portfolio's total value rather than one symbol's price.
PORTFOLIO = "Portfolio"
#: Conditions, as the Alerts card and the JSON API name them.
CONDITIONS = ("above", "below", "moves by %")
_ABOVE, _BELOW, _MOVES = range(3)
#: Alerts one owner (a session, a signed-in user) may keep.
MAX_ALERTS_PER_OWNER = 50
_MAX_VALUE = 1e15


class AlertError(ValueError):
    """An alert cannot be added: the message names the field and the problem."""


@dataclass(frozen=True)
class Alert:
    """``target`` (a symbol or `PORTFOLIO`) ``condition`` ``value``."""

    alert_id: str
    target: str
    condition: str
    value: float
    #: Which of the owner's portfolios a `PORTFOLIO` target values (None: their only one).
    portfolio_id: str | None = None

    @property
    def label(self) -> str:
        if self.condition == "moves by %":
            return f"{self.target} moves by {self.value:g}%"
        return f"{self.target} {self.condition} {self.value:,.2f}"

    def to_json(self) -> dict:
        return {
            "alert_id": self.alert_id,
            "target": self.target,
            "condition": self.condition,
            "value": self.value,
            **({"portfolio_id": self.portfolio_id} if self.portfolio_id else {}),
        }


@dataclass(frozen=True)
class AlertEvent:
    """``alert`` fired on tick ``seq`` (epoch ms ``time``) with the target at ``current``
    (``move`` per cent from the day's open)."""

    alert: Alert
    seq: int
    time: float
    current: float
    move: float

    @property
    def message(self) -> str:
        """E.g. ``AAPL above 190.00: now 190.42`` or ``MSFT moves by 2%: now +2.31%``."""
        if self.alert.condition == "moves by %":
            return f"{self.alert.label}: now {self.move:+.2f}%"
        return f"{self.alert.label}: now {self.current:,.2f}"

    def to_json(self) -> dict:
        return {
            **self.alert.to_json(),
            "message": self.message,
            "seq": self.seq,
            "timestamp": self.time,
            "current": self.current,
            "move": self.move,
        }


def check_alert(target, condition, value, symbols: Sequence[str]) -> tuple[str, str, float]:
    """``(target, condition, value)`` checked, or AlertError naming the field at fault."""
    if not isinstance(target, str) or not target.strip():
        raise AlertError("Target: choose a symbol or Portfolio")
    target = target.strip()
    if target != PORTFOLIO and target not in symbols:
        raise AlertError(f"Target: unknown symbol {target!r}")
    if condition not in CONDITIONS:
        raise AlertError(f"Condition: must be one of {', '.join(CONDITIONS)}")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise AlertError("Value: enter a number")
    if isinstance(value, bool):
        raise AlertError(f"Value: {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AlertError(f"Value: {value!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > _MAX_VALUE:
        raise AlertError(f"Value: {value!r} is not a usable number")
    if condition == "moves by %" and number <= 0:
        raise AlertError("Value: a move must be a positive per cent")
    if condition != "moves by %" and number <= 0:
        raise AlertError("Value: a price or value must be positive")
    return target, condition, number


Callback = Callable[[AlertEvent], None]


class AlertBook:
    """Every alert on one market of ``symbols``, evaluated together per tick.

    Owners (a dashboard session, a signed-in user, a notebook) add alerts with a
    callback, which is called with an `AlertEvent` when one fires; a portfolio target
    needs the owner's holdings as ``weights`` (quantity per symbol of the market), kept
    current with `set_weights`.
    """

    def __init__(self, symbols: Sequence[str], capacity: int = 64) -> None:
        self.symbols = tuple(symbols)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self._ids = itertools.count(1)
        self._n = 0  # slots in use (some may be removed: ``_active`` False)
        # Per slot: the series watched, the condition, the level read from the blocks
        # of `check` and the threshold it must reach (+inf once removed).
        self._target = np.zeros(capacity, dtype=np.int64)
        self._kind = np.zeros(capacity, dtype=np.int64)
        self._lookup = np.zeros(capacity, dtype=np.int64)
        self._threshold = np.full(capacity, np.inf)
        self._armed = np.zeros(capacity, dtype=bool)
        self._active = np.zeros(capacity, dtype=bool)
        self._slots: dict[str, int] = {}
        self._alerts: list[Alert | None] = [None] * capacity
        self._callbacks: list[Callback | None] = [None] * capacity
        self._owner_of: list[Hashable | None] = [None] * capacity
        self._by_owner: dict[Hashable, dict[str, Alert]] = {}
        # Portfolios' holdings, one row per (owner, key): values are weights @ prices.
        self._weights = np.zeros((4, len(self.symbols)))
        self._weight_rows: dict[tuple, int] = {}
        self.evaluated = 0  # ticks checked
        self.fired = 0
        #: Called when the book gains its first alert or loses its last (a feed ticks
        #: while alerts are set, whether or not anyone watches).
        self.on_empty_change: Callable[[], None] | None = None

    #: Alerts one owner may keep.
    max_per_owner = MAX_ALERTS_PER_OWNER

    _ARRAYS = ("_target", "_kind", "_lookup", "_threshold", "_armed", "_active")

    def __len__(self) -> int:
        return len(self._slots)

    def __bool__(self) -> bool:
        return bool(self._slots)

    # -- adding and removing ----------------------------------------------------------------

    def add(
        self,
        target: str,
        condition: str,
        value,
        *,
        callback: Callback | None = None,
        owner: Hashable = None,
        weights=None,
        portfolio_id: str | None = None,
        alert_id: str | None = None,
    ) -> Alert:
        """Watch ``target`` for ``condition`` ``value``; AlertError if any is invalid.

        A `PORTFOLIO` target values the owner's portfolio ``portfolio_id`` (None: their
        only one), whose holdings are ``weights`` (a `Portfolio`, a mapping of symbol to
        quantity, or one quantity per market symbol) or were given to `set_weights`.
        """
        target, condition, number = check_alert(target, condition, value, self.symbols)
        mine = self._by_owner.setdefault(owner, {})
        if len(mine) >= self.max_per_owner:
            raise AlertError(f"at most {self.max_per_owner} alerts each: remove one first")
        if target == PORTFOLIO:
            if weights is not None:
                self.set_weights(owner, weights, portfolio_id)
            row = self._weight_rows.get((owner, portfolio_id))
            if row is None:
                raise AlertError("Target: Portfolio needs the portfolio's holdings")
            series = len(self.symbols) + row
        else:
            series = self._index[target]
            portfolio_id = None
        alert = Alert(alert_id or f"a{next(self._ids)}", target, condition, number, portfolio_id)
        if alert.alert_id in self._slots:
            raise AlertError(f"alert {alert.alert_id!r} exists")
        slot = self._free_slot()
        kind = CONDITIONS.index(condition)
        self._target[slot] = series
        self._kind[slot] = kind
        self._lookup[slot] = kind * self._series_count + series
        self._threshold[slot] = -number if kind == _BELOW else number
        self._armed[slot] = True
        self._active[slot] = True
        self._alerts[slot] = alert
        self._callbacks[slot] = callback
        self._owner_of[slot] = owner
        self._slots[alert.alert_id] = slot
        mine[alert.alert_id] = alert
        if len(self._slots) == 1 and self.on_empty_change is not None:
            self.on_empty_change()
        return alert

    def remove(self, alert_id: str) -> bool:
        """Stop watching an alert; False if there is none of that id."""
        slot = self._slots.pop(alert_id, None)
        if slot is None:
            return False
        owner = self._owner_of[slot]
        mine = self._by_owner.get(owner, {})
        mine.pop(alert_id, None)
        if not mine:
            self._by_owner.pop(owner, None)
        self._active[slot] = False
        self._threshold[slot] = np.inf
        self._alerts[slot] = self._callbacks[slot] = self._owner_of[slot] = None
        if not self._slots and self.on_empty_change is not None:
            self.on_empty_change()
        return True

    def remove_owner(self, owner: Hashable) -> int:
        """Remove every alert of ``owner`` (a closed session); returns how many."""
        ids = list(self._by_owner.get(owner, ()))
        for alert_id in ids:
            self.remove(alert_id)
        for key in [key for key in self._weight_rows if key[0] == owner]:
            del self._weight_rows[key]
        return len(ids)

    def alerts(self, owner: Hashable = None) -> list[Alert]:
        """``owner``'s alerts, oldest first."""
        return list(self._by_owner.get(owner, {}).values())

    def set_weights(self, owner: Hashable, weights, portfolio_id: str | None = None) -> None:
        """The holdings that ``owner``'s `PORTFOLIO` alerts on ``portfolio_id`` value: a
        `Portfolio`, a mapping of symbol to quantity, or one quantity per market symbol."""
        vector = self._weight_vector(weights)
        key = (owner, portfolio_id)
        row = self._weight_rows.get(key)
        if row is None:
            row = self._free_row()
            self._weight_rows[key] = row
        self._weights[row] = vector

    def _weight_vector(self, weights) -> np.ndarray:
        vector = np.zeros(len(self.symbols))
        if hasattr(weights, "symbols") and hasattr(weights, "quantities"):
            weights = dict(zip(weights.symbols, weights.quantities, strict=True))
        if isinstance(weights, dict):
            for symbol, quantity in weights.items():
                if symbol not in self._index:
                    raise AlertError(f"Target: the portfolio holds unknown symbol {symbol!r}")
                vector[self._index[symbol]] = float(quantity)
            return vector
        vector[:] = np.asarray(weights, dtype=float)
        return vector

    @property
    def _series_count(self) -> int:
        return len(self.symbols) + len(self._weights)

    def _free_row(self) -> int:
        used = set(self._weight_rows.values())
        for row in range(len(self._weights)):
            if row not in used:
                return row
        row = len(self._weights)
        grown = np.zeros((2 * row, len(self.symbols)))
        grown[:row] = self._weights
        self._weights = grown
        n = self._n  # the blocks of levels are longer now: every lookup moves
        self._lookup[:n] = self._kind[:n] * self._series_count + self._target[:n]
        return row

    def _free_slot(self) -> int:
        if self._n == len(self._target):
            live = len(self._slots)
            if live < self._n // 2:  # mostly removed: compact instead of growing
                self._compact()
            else:
                self._grow(2 * len(self._target))
        slot = self._n
        self._n += 1
        return slot

    def _grow(self, capacity: int) -> None:
        for name in self._ARRAYS:
            old = getattr(self, name)
            empty = np.inf if name == "_threshold" else 0
            new = np.full(capacity, empty, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)
        extra = [None] * (capacity - len(self._alerts))
        self._alerts += extra
        self._callbacks += list(extra)
        self._owner_of += list(extra)

    def _compact(self) -> None:
        keep = np.flatnonzero(self._active[: self._n])
        n = len(keep)
        for name in self._ARRAYS:
            array = getattr(self, name)
            array[:n] = array[keep]
            array[n:] = np.inf if name == "_threshold" else 0
        for name in ("_alerts", "_callbacks", "_owner_of"):
            items = getattr(self, name)
            kept = [items[i] for i in keep]
            setattr(self, name, kept + [None] * (len(items) - n))
        self._slots = {alert.alert_id: i for i, alert in enumerate(self._alerts[:n])}
        self._n = n

    # -- evaluating -------------------------------------------------------------------------

    def check(self, prices, open_prices) -> np.ndarray:
        """Slots whose alert fires on a tick at ``prices`` (the day opened at
        ``open_prices``), arming and disarming every alert: one pass over all of them.

        The few series (each symbol, each portfolio) are worked out first, as three
        blocks of levels: the value, its negative and its % move from the open. Each
        alert then reads one level and compares it with its threshold (``below``
        compares negatives, so every condition is ``level >= threshold``): one gather
        and one comparison per alert, whatever its condition.
        """
        n = self._n
        if n == 0:
            return np.empty(0, dtype=np.int64)
        series = np.asarray(prices, dtype=float)
        base = np.asarray(open_prices, dtype=float)
        if len(self._weights):
            series = np.concatenate((series, self._weights @ series))
            base = np.concatenate((base, self._weights @ base))
        with np.errstate(divide="ignore", invalid="ignore"):
            move = np.abs(series / base - 1.0) * 100.0
        levels = np.concatenate((series, -series, move))
        true = levels[self._lookup[:n]] >= self._threshold[:n]
        armed = self._armed[:n]
        fired = np.flatnonzero(true & armed)
        np.logical_not(true, out=armed)
        return fired

    def evaluate(self, prices, open_prices, seq: int, time_ms: float) -> list[AlertEvent]:
        """Check every alert on one tick; call the callbacks of those that fire."""
        fired = self.check(prices, open_prices)
        self.evaluated += 1
        if not len(fired):
            return []
        prices = np.asarray(prices, dtype=float)
        open_prices = np.asarray(open_prices, dtype=float)
        events = []
        for slot in fired.tolist():
            series = int(self._target[slot])
            if series < len(self.symbols):
                current, base = prices[series], open_prices[series]
            else:
                weights = self._weights[series - len(self.symbols)]
                current, base = float(weights @ prices), float(weights @ open_prices)
            move = (current / base - 1.0) * 100.0 if base else float("nan")
            event = AlertEvent(self._alerts[slot], int(seq), float(time_ms), float(current), move)
            events.append(event)
            callback = self._callbacks[slot]
            if callback is not None:
                try:
                    callback(event)
                except Exception:  # one owner's failure must not stop the others
                    log.exception("alert callback for %s failed", event.alert.label)
        self.fired += len(events)
        return events

    def evaluate_batch(self, batch, open_prices) -> list[AlertEvent]:
        """`evaluate` each tick of a `TickBatch` in order."""
        events = []
        for i in range(len(batch)):
            events += self.evaluate(batch.prices[i], open_prices, batch.seq[i], batch.time[i])
        return events


# -- one owner's alerts, as a dashboard's card or a JSON API connection uses them -------
#
# Both kinds answer the same calls: `SessionAlerts` keeps an anonymous session's (or
# connection's) alerts in the feed's book until it ends; `SignedInAlerts` hands a
# signed-in user's to the server's keeper of users' alerts (``server.alerts.UserAlerts``),
# which stores them and checks them while the user is away.


class SessionAlerts:
    """A session's own alerts, in the feed's book until the session ends."""

    def __init__(self, book: AlertBook, on_fire: Callback) -> None:
        self.book = book
        self.owner = f"session:{id(self)}"  # a string: the book holds nothing of the session
        self._on_fire = on_fire

    async def add(self, target, condition, value, portfolio) -> Alert:
        return self.book.add(
            target, condition, value, owner=self.owner, callback=self._on_fire,
            weights=portfolio if target == PORTFOLIO else None,
        )  # fmt: skip

    async def remove(self, alert_id: str) -> bool:
        return self.book.remove(alert_id)

    def alerts(self) -> list[Alert]:
        return self.book.alerts(self.owner)

    async def history(self) -> list[dict]:
        return []

    def portfolio_changed(self, portfolio) -> None:
        if any(a.target == PORTFOLIO for a in self.alerts()):
            self.book.set_weights(self.owner, portfolio)

    def close(self) -> None:
        self.book.remove_owner(self.owner)


class SignedInAlerts:
    """A signed-in user's alerts: kept in the store, checked for them by the server."""

    def __init__(self, user_alerts, user: str, on_fire: Callback) -> None:
        self.user_alerts = user_alerts
        self.user = user
        self._stop = user_alerts.listen(user, on_fire)

    async def add(self, target, condition, value, portfolio) -> Alert:
        return await self.user_alerts.add(
            self.user, target, condition, value, getattr(portfolio, "portfolio_id", None)
        )

    async def remove(self, alert_id: str) -> bool:
        return await self.user_alerts.remove(self.user, alert_id)

    def alerts(self) -> list[Alert]:
        return self.user_alerts.alerts(self.user)

    async def history(self) -> list[dict]:
        await self.user_alerts.load(self.user)  # in case the store was down at start
        return await self.user_alerts.history(self.user)

    def portfolio_changed(self, portfolio) -> None:
        """Nothing to do: the server revalues a user's alerts when their portfolios change."""

    def close(self) -> None:
        self._stop()
