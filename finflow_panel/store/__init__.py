"""Users and their saved portfolios (no panel/bokeh): the credentials file and the
portfolio store, SQLite embedded or Redis for many hosts."""

from __future__ import annotations

from .base import (
    ALERT_LOG_SIZE,
    EVERYONE,
    MAX_ALERTS,
    MAX_PORTFOLIOS,
    MAX_POSITIONS,
    PortfolioStore,
    Position,
    SavedPortfolio,
    StoreError,
    StoreUnavailable,
    parse_portfolio,
)

__all__ = [
    "ALERT_LOG_SIZE",
    "DEFAULT_STORE",
    "EVERYONE",
    "MAX_ALERTS",
    "MAX_PORTFOLIOS",
    "MAX_POSITIONS",
    "PortfolioStore",
    "Position",
    "SavedPortfolio",
    "StoreError",
    "StoreUnavailable",
    "open_store",
    "parse_portfolio",
]

#: The embedded default: a SQLite file in the working directory.
DEFAULT_STORE = "sqlite:///finflow.db"


def open_store(url: str = DEFAULT_STORE) -> PortfolioStore:
    """The store at ``url``: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or
    ``redis://[:password@]host:port/db``. ValueError for a URL of neither kind;
    StoreUnavailable when it cannot be opened."""
    if url.startswith("sqlite:"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis_store import RedisStore

        return RedisStore(url)
    raise ValueError(f"--store {url!r}: expected sqlite:///path.db or redis://host:port/db")
