"""Users' saved portfolios: what a store keeps, its limits, and the interface every
backend implements (SQLite embedded, Redis for many hosts)."""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ALERT_LOG_SIZE",
    "MAX_ALERTS",
    "MAX_NAME_CHARS",
    "MAX_PORTFOLIOS",
    "MAX_POSITIONS",
    "PortfolioStore",
    "Position",
    "SavedPortfolio",
    "StoreError",
    "StoreUnavailable",
    "parse_portfolio",
]

#: Holdings in one saved portfolio (a dashboard shows at most 50).
MAX_POSITIONS = 50
#: Portfolios one user may keep.
MAX_PORTFOLIOS = 100
MAX_NAME_CHARS = 80
#: Alerts one user keeps, and fired alerts their log keeps (newest).
MAX_ALERTS = 50
ALERT_LOG_SIZE = 50
MAX_QUANTITY = 1e12
MAX_PRICE = 1e9


class StoreError(ValueError):
    """A portfolio or a request for one is invalid; the message names the problem."""


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or written now (nothing was changed)."""


@dataclass(frozen=True)
class Position:
    """``quantity`` units of ``symbol``, bought at ``cost_basis`` a unit where known."""

    symbol: str
    quantity: float
    cost_basis: float | None = None

    def to_json(self) -> dict:
        data: dict = {"symbol": self.symbol, "quantity": self.quantity}
        if self.cost_basis is not None:
            data["cost_basis"] = self.cost_basis
        return data


@dataclass(frozen=True)
class SavedPortfolio:
    """One user's named portfolio as stored."""

    portfolio_id: str
    owner: str
    name: str
    positions: tuple[Position, ...]
    created: float
    updated: float

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(p.symbol for p in self.positions)

    def to_record(self) -> str:
        return json.dumps(
            {
                "portfolio_id": self.portfolio_id,
                "owner": self.owner,
                "name": self.name,
                "positions": [p.to_json() for p in self.positions],
                "created": self.created,
                "updated": self.updated,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_record(cls, text: str | bytes) -> SavedPortfolio:
        data = json.loads(text)
        return cls(
            portfolio_id=data["portfolio_id"],
            owner=data["owner"],
            name=data["name"],
            positions=tuple(Position(**p) for p in data["positions"]),
            created=data["created"],
            updated=data["updated"],
        )


def _number(value, what: str, *, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StoreError(f"{what} must be a number, not {value!r}"[:200])
    if not math.isfinite(value) or value <= 0:
        raise StoreError(f"{what} must be greater than 0 (got {value!r})")
    if value > high:
        raise StoreError(f"{what} must be at most {high:g} (got {value!r})")
    return float(value)


def check_name(name) -> str:
    if not isinstance(name, str):
        raise StoreError("portfolio_name must be text")
    name = " ".join(name.split())
    if not name:
        raise StoreError("portfolio_name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise StoreError(f"portfolio_name is longer than {MAX_NAME_CHARS} characters")
    return name


def parse_portfolio(body, symbols: Iterable[str]) -> tuple[str, tuple[Position, ...]]:
    """``{"portfolio_name": ..., "holdings": [{"symbol", "quantity", "cost_basis"?}]}``
    checked against the market's ``symbols``: the name and positions, or a StoreError
    naming the first problem."""
    if not isinstance(body, Mapping):
        raise StoreError("expected a JSON object with portfolio_name and holdings")
    unknown_fields = sorted(set(body) - {"portfolio_name", "holdings"})
    if unknown_fields:
        raise StoreError(f"unknown field(s): {', '.join(map(str, unknown_fields))[:200]}")
    name = check_name(body.get("portfolio_name"))
    holdings = body.get("holdings")
    if not isinstance(holdings, list):
        raise StoreError("holdings must be a list of {symbol, quantity} objects")
    if not holdings:
        raise StoreError("holdings is empty: a portfolio needs at least one holding")
    if len(holdings) > MAX_POSITIONS:
        raise StoreError(f"{len(holdings)} holdings is more than {MAX_POSITIONS}")
    known = set(symbols)
    positions: list[Position] = []
    seen: set[str] = set()
    for i, holding in enumerate(holdings):
        where = f"holdings[{i}]"
        if not isinstance(holding, Mapping):
            raise StoreError(f"{where} must be an object with symbol and quantity")
        extra = sorted(set(holding) - {"symbol", "quantity", "cost_basis"})
        if extra:
            raise StoreError(f"{where}: unknown field(s): {', '.join(map(str, extra))[:200]}")
        symbol = holding.get("symbol")
        if not isinstance(symbol, str) or not symbol.strip():
            raise StoreError(f"{where}: symbol must be non-empty text")
        symbol = symbol.strip().upper()
        if symbol not in known:
            raise StoreError(f"{where}: unknown symbol {symbol[:20]!r}: not in the market")
        if symbol in seen:
            raise StoreError(f"{where}: {symbol} is listed twice")
        seen.add(symbol)
        if "quantity" not in holding:
            raise StoreError(f"{where}: quantity is missing")
        quantity = _number(holding["quantity"], f"{where}: quantity of {symbol}", high=MAX_QUANTITY)
        cost = holding.get("cost_basis")
        if cost is not None:
            cost = _number(cost, f"{where}: cost_basis of {symbol}", high=MAX_PRICE)
        positions.append(Position(symbol, quantity, cost))
    return name, tuple(positions)


#: Subscribe to this "owner" to hear of every user's changes.
EVERYONE = "\x00everyone"


def _json(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def new_id() -> str:
    """An identifier nobody can guess (96 random bits)."""
    return secrets.token_urlsafe(12)


class PortfolioStore(ABC):
    """Users' portfolios. Every read and write names the owner, and a portfolio is only
    ever found for its owner: another user's id reads as missing.

    Writes are atomic. Listeners registered with `subscribe` hear of every change to a
    user's portfolios made through this store (in this process; the Redis store also
    hears other processes').
    """

    url: str

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[str], None]]] = {}
        self._listeners_lock = threading.Lock()

    # -- reads ----------------------------------------------------------------------------

    @abstractmethod
    def portfolios(self, owner: str) -> list[SavedPortfolio]:
        """``owner``'s portfolios, oldest first."""

    @abstractmethod
    def get(self, owner: str, portfolio_id: str) -> SavedPortfolio | None:
        """The portfolio if it exists and is ``owner``'s, else None."""

    # -- writes ---------------------------------------------------------------------------

    @abstractmethod
    def _insert(self, portfolio: SavedPortfolio, *, new_user: bool) -> bool:
        """Store a new portfolio; with ``new_user``, only if ``owner`` was never seen
        (and mark them seen). False if refused (a user seen before, or at the limit)."""

    @abstractmethod
    def _replace(self, portfolio: SavedPortfolio) -> bool:
        """Overwrite the owner's portfolio of that id; False if there is none."""

    @abstractmethod
    def _delete(self, owner: str, portfolio_id: str) -> bool:
        """Remove the owner's portfolio of that id; False if there is none."""

    def create(self, owner: str, name: str, positions: Iterable[Position]) -> SavedPortfolio:
        now = time.time()
        portfolio = SavedPortfolio(new_id(), owner, check_name(name), tuple(positions), now, now)
        if not self._insert(portfolio, new_user=False):
            raise StoreError(f"a user keeps at most {MAX_PORTFOLIOS} portfolios")
        self._changed(owner)
        return portfolio

    def replace(
        self, owner: str, portfolio_id: str, name: str, positions: Iterable[Position]
    ) -> SavedPortfolio | None:
        old = self.get(owner, portfolio_id)
        if old is None:
            return None
        new = SavedPortfolio(
            portfolio_id, owner, check_name(name), tuple(positions), old.created, time.time()
        )
        if not self._replace(new):
            return None
        self._changed(owner)
        return new

    def delete(self, owner: str, portfolio_id: str) -> bool:
        deleted = self._delete(owner, portfolio_id)
        if deleted:
            self._changed(owner)
        return deleted

    def ensure_user(
        self, owner: str, starter: Callable[[], tuple[str, Iterable[Position]]]
    ) -> list[SavedPortfolio]:
        """``owner``'s portfolios; a user never seen before first gets ``starter()`` (once,
        even if several of their sessions open at the same moment)."""
        portfolios = self.portfolios(owner)
        if portfolios:  # a user with portfolios is not new: no write, no lock
            return portfolios
        name, positions = starter()
        now = time.time()
        portfolio = SavedPortfolio(new_id(), owner, check_name(name), tuple(positions), now, now)
        if self._insert(portfolio, new_user=True):
            self._changed(owner)
        return self.portfolios(owner)

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""

    # -- alerts ---------------------------------------------------------------------------
    #
    # A user's price alerts (JSON objects with an ``alert_id``) and the log of those that
    # fired. Several processes may check the same alerts on the same ticks: a log entry
    # is keyed by alert and tick, so each is kept once however many write it.

    @abstractmethod
    def _alert_records(self, owner: str) -> list[str]:
        """``owner``'s alerts as stored, oldest first."""

    @abstractmethod
    def _put_alert(self, owner: str, alert_id: str, record: str, created: float) -> bool:
        """Store a new alert; False at the limit (`MAX_ALERTS`)."""

    @abstractmethod
    def _drop_alert(self, owner: str, alert_id: str) -> bool:
        """Remove ``owner``'s alert; False if there is none of that id."""

    @abstractmethod
    def alert_owners(self) -> list[str]:
        """Users who have alerts (checked by the server while they are away)."""

    @abstractmethod
    def _append_log(self, owner: str, key: str, record: str, at: float) -> bool:
        """Add a log entry unless one of ``key`` exists; keep the newest `ALERT_LOG_SIZE`."""

    @abstractmethod
    def _log_records(self, owner: str) -> list[str]:
        """``owner``'s log, newest first."""

    def alerts(self, owner: str) -> list[dict]:
        return [json.loads(r) for r in self._alert_records(owner)]

    def add_alert(self, owner: str, alert: Mapping) -> dict:
        """Keep a new alert (a JSON object with ``alert_id``); StoreError at the limit."""
        record = dict(alert)
        if not self._put_alert(owner, str(record["alert_id"]), _json(record), time.time()):
            raise StoreError(f"at most {MAX_ALERTS} alerts each: remove one first")
        self._changed(owner)
        return record

    def remove_alert(self, owner: str, alert_id: str) -> bool:
        removed = self._drop_alert(owner, alert_id)
        if removed:
            self._changed(owner)
        return removed

    def log_alert(self, owner: str, entry: Mapping) -> bool:
        """Log a fired alert (``alert_id`` and ``seq`` identify it); False if logged."""
        key = f"{entry['alert_id']}:{entry['seq']}"
        return self._append_log(owner, key, _json(dict(entry)), float(entry["timestamp"]))

    def alert_log(self, owner: str) -> list[dict]:
        """``owner``'s fired alerts, newest first."""
        return [json.loads(r) for r in self._log_records(owner)]

    # -- change notification --------------------------------------------------------------

    def subscribe(self, owner: str, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(owner)`` after each change to ``owner``'s portfolios or alerts
        (`EVERYONE`: anyone's); returns the function that stops it."""
        with self._listeners_lock:
            self._listeners.setdefault(owner, []).append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                listeners = self._listeners.get(owner, [])
                if listener in listeners:
                    listeners.remove(listener)
                if not listeners:
                    self._listeners.pop(owner, None)

        return unsubscribe

    def _changed(self, owner: str) -> None:
        self._notify(owner)

    def _notify(self, owner: str) -> None:
        with self._listeners_lock:
            listeners = [*self._listeners.get(owner, ()), *self._listeners.get(EVERYONE, ())]
        for listener in listeners:
            listener(owner)
