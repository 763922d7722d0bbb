"""The embedded store: one SQLite file (the default, ``sqlite:///finflow.db``)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .base import (
    ALERT_LOG_SIZE,
    MAX_ALERTS,
    MAX_PORTFOLIOS,
    PortfolioStore,
    SavedPortfolio,
    StoreUnavailable,
)

__all__ = ["SQLiteStore"]

#: Schema migrations, applied in order; ``PRAGMA user_version`` is how many have run.
MIGRATIONS = (
    """
    CREATE TABLE users (name TEXT PRIMARY KEY, created REAL NOT NULL);
    CREATE TABLE portfolios (
        portfolio_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES users(name),
        created REAL NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX portfolios_by_owner ON portfolios (owner, created);
    """,
    """
    CREATE TABLE alerts (
        alert_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        created REAL NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX alerts_by_owner ON alerts (owner, created);
    CREATE TABLE alert_log (
        owner TEXT NOT NULL,
        entry TEXT NOT NULL,
        at REAL NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (owner, entry)
    );
    CREATE INDEX alert_log_by_time ON alert_log (owner, at);
    """,
)


def sqlite_path(url: str) -> str:
    """The file of a SQLAlchemy-style ``sqlite:///relative.db`` or
    ``sqlite:////absolute/path.db`` URL (``sqlite:///:memory:`` for a private one)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            f"--store {url!r}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return url[len(prefix) :]


class SQLiteStore(PortfolioStore):
    """Portfolios in a SQLite file. Each write is one transaction (a crash leaves the
    portfolio as it was or as it became, never half-saved); readers never wait for a
    writer (WAL). Calls are serialized by a lock, so a store may be shared by threads."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        path = sqlite_path(url)
        if path != ":memory:":
            parent = Path(path).parent
            if not parent.is_dir():
                raise StoreUnavailable(f"--store {url}: no directory {parent}")
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 5000")
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"--store {url}: {error}") from None
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise sqlite3.DatabaseError(
                    f"schema version {version} is newer than this finflow_panel knows "
                    f"({len(MIGRATIONS)}); upgrade finflow_panel"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _run(self, fn):
        with self._lock:
            try:
                return fn(self._db)
            except sqlite3.OperationalError as error:
                raise StoreUnavailable(f"the portfolio store is unavailable: {error}") from None

    def _write(self, fn) -> bool:
        def transaction(db):
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT" if result else "ROLLBACK")
            return result

        return self._run(transaction)

    def portfolios(self, owner: str) -> list[SavedPortfolio]:
        rows = self._run(
            lambda db: db.execute(
                "SELECT record FROM portfolios WHERE owner = ? ORDER BY created, portfolio_id",
                (owner,),
            ).fetchall()
        )
        return [SavedPortfolio.from_record(record) for (record,) in rows]

    def get(self, owner: str, portfolio_id: str) -> SavedPortfolio | None:
        row = self._run(
            lambda db: db.execute(
                "SELECT record FROM portfolios WHERE owner = ? AND portfolio_id = ?",
                (owner, portfolio_id),
            ).fetchone()
        )
        return None if row is None else SavedPortfolio.from_record(row[0])

    def _insert(self, portfolio: SavedPortfolio, *, new_user: bool) -> bool:
        def insert(db) -> bool:
            added = db.execute(
                "INSERT OR IGNORE INTO users (name, created) VALUES (?, ?)",
                (portfolio.owner, portfolio.created),
            ).rowcount
            if new_user and not added:
                return False
            (count,) = db.execute(
                "SELECT COUNT(*) FROM portfolios WHERE owner = ?", (portfolio.owner,)
            ).fetchone()
            if count >= MAX_PORTFOLIOS:
                return False
            db.execute(
                "INSERT INTO portfolios (portfolio_id, owner, created, record) VALUES (?, ?, ?, ?)",
                (portfolio.portfolio_id, portfolio.owner, portfolio.created, portfolio.to_record()),
            )
            return True

        return self._write(insert)

    def _replace(self, portfolio: SavedPortfolio) -> bool:
        return self._write(
            lambda db: (
                db.execute(
                    "UPDATE portfolios SET record = ? WHERE owner = ? AND portfolio_id = ?",
                    (portfolio.to_record(), portfolio.owner, portfolio.portfolio_id),
                ).rowcount
                == 1
            )
        )

    def _delete(self, owner: str, portfolio_id: str) -> bool:
        return self._write(
            lambda db: (
                db.execute(
                    "DELETE FROM portfolios WHERE owner = ? AND portfolio_id = ?",
                    (owner, portfolio_id),
                ).rowcount
                == 1
            )
        )

    def _alert_records(self, owner: str) -> list[str]:
        rows = self._run(
            lambda db: db.execute(
                "SELECT record FROM alerts WHERE owner = ? ORDER BY created, alert_id", (owner,)
            ).fetchall()
        )
        return [record for (record,) in rows]

    def _put_alert(self, owner: str, alert_id: str, record: str, created: float) -> bool:
        def insert(db) -> bool:
            query = "SELECT COUNT(*) FROM alerts WHERE owner = ?"
            (count,) = db.execute(query, (owner,)).fetchone()
            if count >= MAX_ALERTS:
                return False
            db.execute(
                "INSERT INTO alerts (alert_id, owner, created, record) VALUES (?, ?, ?, ?)",
                (alert_id, owner, created, record),
            )
            return True

        return self._write(insert)

    def _drop_alert(self, owner: str, alert_id: str) -> bool:
        return self._write(
            lambda db: (
                db.execute(
                    "DELETE FROM alerts WHERE owner = ? AND alert_id = ?", (owner, alert_id)
                ).rowcount
                == 1
            )
        )

    def alert_owners(self) -> list[str]:
        rows = self._run(
            lambda db: db.execute("SELECT DISTINCT owner FROM alerts ORDER BY owner").fetchall()
        )
        return [owner for (owner,) in rows]

    def _append_log(self, owner: str, key: str, record: str, at: float) -> bool:
        def append(db) -> bool:
            added = db.execute(
                "INSERT OR IGNORE INTO alert_log (owner, entry, at, record) VALUES (?, ?, ?, ?)",
                (owner, key, at, record),
            ).rowcount
            db.execute(
                "DELETE FROM alert_log WHERE owner = ? AND entry NOT IN (SELECT entry FROM"
                " alert_log WHERE owner = ? ORDER BY at DESC, entry DESC LIMIT ?)",
                (owner, owner, ALERT_LOG_SIZE),
            )
            return added == 1

        return self._write(append)

    def _log_records(self, owner: str) -> list[str]:
        rows = self._run(
            lambda db: db.execute(
                "SELECT record FROM alert_log WHERE owner = ? ORDER BY at DESC, entry DESC LIMIT ?",
                (owner, ALERT_LOG_SIZE),
            ).fetchall()
        )
        return [record for (record,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
