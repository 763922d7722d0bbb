"""The store for many hosts: portfolios in Redis (``--store redis://...``, or the
``--redis`` market's own Redis when no store is named)."""

from __future__ import annotations

import logging
import threading

from .base import (
    ALERT_LOG_SIZE,
    MAX_ALERTS,
    MAX_PORTFOLIOS,
    PortfolioStore,
    SavedPortfolio,
    StoreUnavailable,
)

__all__ = ["RedisStore"]

log = logging.getLogger(__name__)

# Keys (under a prefix): portfolio:<id> -> JSON record; owner:<name> -> zset of ids by
# creation time; users -> set of users ever seen; channel "changed" <- owner names.
# Every write is one script: Redis runs it whole or not at all, and checks the owner
# in the same step as the change.
_INSERT = """
local prefix, owner, id, created, record = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local new_user, limit = ARGV[6] == '1', tonumber(ARGV[7])
local added = redis.call('SADD', prefix .. 'users', owner)
if new_user and added == 0 then return 0 end
local key = prefix .. 'owner:' .. owner
if redis.call('ZCARD', key) >= limit then return 0 end
redis.call('SET', prefix .. 'portfolio:' .. id, record)
redis.call('ZADD', key, created, id)
redis.call('PUBLISH', prefix .. 'changed', owner)
return 1
"""
_REPLACE = """
local prefix, owner, id, record = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not redis.call('ZSCORE', prefix .. 'owner:' .. owner, id) then return 0 end
redis.call('SET', prefix .. 'portfolio:' .. id, record)
redis.call('PUBLISH', prefix .. 'changed', owner)
return 1
"""
_DELETE = """
local prefix, owner, id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZREM', prefix .. 'owner:' .. owner, id) == 0 then return 0 end
redis.call('DEL', prefix .. 'portfolio:' .. id)
redis.call('PUBLISH', prefix .. 'changed', owner)
return 1
"""

# Alerts: alert:<owner> -> hash id -> record, alert-order:<owner> -> zset of ids by
# creation, alert-owners -> set of users with alerts; log:<owner> -> zset of entry keys
# by time, log-record:<owner> -> hash key -> record (written once per key).
_PUT_ALERT = """
local prefix, owner, id, record, created, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  tonumber(ARGV[6])
local order = prefix .. 'alert-order:' .. owner
if redis.call('ZCARD', order) >= limit then return 0 end
redis.call('HSET', prefix .. 'alert:' .. owner, id, record)
redis.call('ZADD', order, created, id)
redis.call('SADD', prefix .. 'alert-owners', owner)
redis.call('PUBLISH', prefix .. 'changed', owner)
return 1
"""
_DROP_ALERT = """
local prefix, owner, id = ARGV[1], ARGV[2], ARGV[3]
local order = prefix .. 'alert-order:' .. owner
if redis.call('ZREM', order, id) == 0 then return 0 end
redis.call('HDEL', prefix .. 'alert:' .. owner, id)
if redis.call('ZCARD', order) == 0 then redis.call('SREM', prefix .. 'alert-owners', owner) end
redis.call('PUBLISH', prefix .. 'changed', owner)
return 1
"""
_APPEND_LOG = """
local prefix, owner, key, record, at, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  tonumber(ARGV[6])
local records, log = prefix .. 'log-record:' .. owner, prefix .. 'log:' .. owner
if redis.call('HSETNX', records, key, record) == 0 then return 0 end
redis.call('ZADD', log, at, key)
local old = redis.call('ZRANGE', log, 0, -(keep + 1))
if #old > 0 then
  redis.call('HDEL', records, unpack(old))
  redis.call('ZREMRANGEBYRANK', log, 0, -(keep + 1))
end
return 1
"""


class RedisStore(PortfolioStore):
    """Portfolios in Redis, shared by every process and host using it. Changes made by
    any of them reach this store's listeners through a pub/sub channel."""

    def __init__(self, url: str, prefix: str = "finflow:store:") -> None:
        super().__init__()
        try:
            import redis
        except ImportError:
            raise StoreUnavailable(
                "--store redis://... needs the redis client: pip install 'finflow_panel[redis]'"
            ) from None
        self._redis_errors = (redis.RedisError, OSError)
        self.url = url
        self._prefix = prefix
        try:
            self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        except ValueError as error:
            raise StoreUnavailable(f"--store: {error}") from None
        self._scripts = {
            name: self._client.register_script(code)
            for name, code in (
                ("insert", _INSERT),
                ("replace", _REPLACE),
                ("delete", _DELETE),
                ("put_alert", _PUT_ALERT),
                ("drop_alert", _DROP_ALERT),
                ("log", _APPEND_LOG),
            )  # fmt: skip
        }
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        self._following = threading.Event()  # the change channel is subscribed

    def _call(self, fn):
        try:
            return fn()
        except self._redis_errors as error:
            raise StoreUnavailable(f"the portfolio store is unavailable: {error}") from None

    def portfolios(self, owner: str) -> list[SavedPortfolio]:
        def read():
            ids = self._client.zrange(f"{self._prefix}owner:{owner}", 0, -1)
            if not ids:
                return []
            keys = [f"{self._prefix}portfolio:{i.decode()}" for i in ids]
            return [r for r in self._client.mget(keys) if r is not None]

        return [SavedPortfolio.from_record(r) for r in self._call(read)]

    def get(self, owner: str, portfolio_id: str) -> SavedPortfolio | None:
        def read():
            pipe = self._client.pipeline(transaction=True)
            pipe.zscore(f"{self._prefix}owner:{owner}", portfolio_id)
            pipe.get(f"{self._prefix}portfolio:{portfolio_id}")
            return pipe.execute()

        score, record = self._call(read)
        if score is None or record is None:
            return None
        portfolio = SavedPortfolio.from_record(record)
        return portfolio if portfolio.owner == owner else None

    def _insert(self, portfolio: SavedPortfolio, *, new_user: bool) -> bool:
        args = [self._prefix, portfolio.owner, portfolio.portfolio_id, portfolio.created,
                portfolio.to_record(), int(new_user), MAX_PORTFOLIOS]  # fmt: skip
        return bool(self._call(lambda: self._scripts["insert"](args=args)))

    def _replace(self, portfolio: SavedPortfolio) -> bool:
        args = [self._prefix, portfolio.owner, portfolio.portfolio_id, portfolio.to_record()]
        return bool(self._call(lambda: self._scripts["replace"](args=args)))

    def _delete(self, owner: str, portfolio_id: str) -> bool:
        args = [self._prefix, owner, portfolio_id]
        return bool(self._call(lambda: self._scripts["delete"](args=args)))

    def _alert_records(self, owner: str) -> list[str]:
        def read():
            ids = self._client.zrange(f"{self._prefix}alert-order:{owner}", 0, -1)
            if not ids:
                return []
            return [r for r in self._client.hmget(f"{self._prefix}alert:{owner}", ids) if r]

        return [r.decode() for r in self._call(read)]

    def _put_alert(self, owner: str, alert_id: str, record: str, created: float) -> bool:
        args = [self._prefix, owner, alert_id, record, created, MAX_ALERTS]
        return bool(self._call(lambda: self._scripts["put_alert"](args=args)))

    def _drop_alert(self, owner: str, alert_id: str) -> bool:
        args = [self._prefix, owner, alert_id]
        return bool(self._call(lambda: self._scripts["drop_alert"](args=args)))

    def alert_owners(self) -> list[str]:
        owners = self._call(lambda: self._client.smembers(f"{self._prefix}alert-owners"))
        return sorted(o.decode() for o in owners)

    def _append_log(self, owner: str, key: str, record: str, at: float) -> bool:
        args = [self._prefix, owner, key, record, at, ALERT_LOG_SIZE]
        return bool(self._call(lambda: self._scripts["log"](args=args)))

    def _log_records(self, owner: str) -> list[str]:
        def read():
            keys = self._client.zrevrange(f"{self._prefix}log:{owner}", 0, ALERT_LOG_SIZE - 1)
            if not keys:
                return []
            return [r for r in self._client.hmget(f"{self._prefix}log-record:{owner}", keys) if r]

        return [r.decode() for r in self._call(read)]

    def _changed(self, owner: str) -> None:
        # The script published the change; listeners hear it through the channel (this
        # process's included) once it runs, and at once when it does not yet.
        if self._listener is None:
            self._notify(owner)

    def subscribe(self, owner, listener):
        if self._listener is None:
            self._listener = threading.Thread(
                target=self._listen, name="finflow-store-changes", daemon=True
            )
            self._listener.start()
            # A change made right after this call must be heard: wait for Redis to
            # confirm the subscription (a round trip; at once if Redis is down, and at
            # most a second if it hangs).
            self._following.wait(1.0)
        return super().subscribe(owner, listener)

    def _listen(self) -> None:
        """Relay the changed-owner channel to listeners, reconnecting after an outage."""
        channel = f"{self._prefix}changed"
        failing = False
        while not self._closed.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(channel)
                if failing:
                    log.warning("portfolio store changes: following again")
                    failing = False
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "message":
                        self._notify(message["data"].decode())
                    elif message["type"] == "subscribe":
                        self._following.set()
            except self._redis_errors as error:
                self._following.set()  # nothing to wait for
                if not failing:  # one line an outage, not one a second
                    log.warning("portfolio store changes: %s; retrying every second", error)
                    failing = True
                self._closed.wait(1.0)
            finally:
                try:
                    pubsub.close()
                except self._redis_errors:
                    pass

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._client.close()
