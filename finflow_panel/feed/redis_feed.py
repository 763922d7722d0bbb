"""One market for many processes and hosts, through Redis.

Every process holds a `SharedFeed`'s ring buffer and subscribers as in memory; what
differs is where ticks come from. One process at a time leads: it holds a lease key
(``<key>:leader``, expiring unless renewed) and is the only one to step the random walk.
It appends each tick to a Redis stream (``<key>:ticks``, capped at the history size) with
the walk's state; every process, the leader included, reads the stream and tells its own
subscribers, exactly as an in-memory tick would. A new leader continues the walk from
the newest entry's state: the same market, with no jump and no repeated or skipped
sequence number.

Stream entries have the id ``<seq>-1``, so Redis itself refuses a second entry for a
sequence number (a leader that lost its lease without knowing it); each append also
checks the lease in the same script.

When Redis is unreachable, processes keep serving from what they hold (the feed is
``stalled``), retry with a backoff capped at 2 s, and follow the stream again when it is
back. If it comes back empty, the process holding the newest tick re-publishes the ticks
it holds and leads on from there: no tick is invented, none is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import time
import uuid

import numpy as np
import param

from .shared import _DAY_MS, SharedFeed

__all__ = ["LEASE_MS", "RedisFeed", "RedisUnavailable", "check_redis", "redacted", "redis_client"]

log = logging.getLogger(__name__)

#: How long a leader's lease lasts without renewal; renewed every third of it.
LEASE_MS = 2000
#: Longest wait between attempts to reach Redis.
MAX_BACKOFF_S = 2.0
#: While Redis is empty, how long processes gather their newest ticks before electing.
SEED_WINDOW_S = 0.5

_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local i = 3
while i <= #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], ARGV[i], 't', ARGV[i + 1], 'p', ARGV[i + 2],
             'o', ARGV[i + 3], 'd', ARGV[i + 4], 's', ARGV[i + 5])
  i = i + 6
end
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisUnavailable(RuntimeError):
    """Redis cannot be used: not installed, a bad URL, refused, or refused our login."""


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def redis_client(url: str):
    """An asyncio Redis client for ``url``; `RedisUnavailable` names what is wrong."""
    try:
        import redis.asyncio as aioredis
    except ImportError:
        raise RedisUnavailable(
            "--redis needs the redis client: pip install 'finflow_panel[redis]'"
        ) from None
    try:
        return aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    except ValueError as error:
        raise RedisUnavailable(f"bad Redis URL {redacted(url)!r}: {error}") from None


def check_redis(url: str) -> None:
    """Connect and PING once (for start-up): one clear `RedisUnavailable` if it fails."""
    import redis

    client = redis_client(url)  # the import and URL checks

    async def ping():
        try:
            await client.ping()
        finally:
            await client.aclose()

    where = redacted(url)
    try:
        asyncio.run(ping())
    except (redis.AuthenticationError, redis.AuthenticationWrongNumberOfArgsError) as error:
        raise RedisUnavailable(f"Redis at {where} refused the login: {error}") from None
    except redis.ResponseError as error:  # e.g. NOAUTH: a password is needed
        raise RedisUnavailable(f"Redis at {where} refused: {error}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
        raise RedisUnavailable(f"cannot connect to Redis at {where}: {error}") from None


def market_key(walk) -> str:
    """A key naming the market a walk makes: processes agree on it without configuration,
    and two different portfolios on one Redis stay two markets."""
    if hasattr(walk, "fingerprint"):  # a replay: the same file is the same market
        return f"finflow:replay:{walk.fingerprint()}"
    fingerprint = json.dumps(
        [walk.symbols, walk.start_prices.tolist(), walk.drift.tolist(),
         walk.volatility.tolist(), walk.correlation.tolist(), walk.dt]
    )  # fmt: skip
    return "finflow:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


class RedisFeed(SharedFeed):
    """A `SharedFeed` whose ticks come from a Redis stream shared by many processes.

    The market runs whether or not this process has subscribers (others may), from the
    moment the feed is started on an event loop. ``warmup`` backdated ticks start a market
    that has none anywhere, so its first visitor sees a chart at once.
    """

    stalled = param.Boolean(
        default=True, doc="Whether this process is cut off from the market (Redis unreachable)."
    )
    is_leader = param.Boolean(default=False, doc="Whether this process steps the market.")

    def __init__(self, walk, url: str, key: str | None = None, warmup: int = 0, **params):
        super().__init__(walk, **params)
        self.url = url
        self.key = key or market_key(walk)
        self.warmup = warmup
        self.token = uuid.uuid4().hex
        self._client = None
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self._walk_state: str | None = None  # of the newest tick read
        self._open_day_sent: int | None = None
        self.redis_commands = 0  # sent by this process, for monitoring

    # -- reading (from what this process holds) --------------------------------------------

    @property
    def prices(self) -> np.ndarray:
        batch = self.latest(1)
        return batch.prices[-1].copy() if len(batch) else self.walk.prices

    # -- the loops --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    def start(self) -> None:
        """Follow (and, when elected, lead) the market on the current event loop."""
        if self.running:
            return
        from tornado.ioloop import IOLoop

        IOLoop.current().add_callback(self._start_tasks)

    def _start_tasks(self) -> None:
        if self.running:
            return
        self._client = redis_client(self.url)
        # Registered scripts go by their SHA (EVALSHA): the script text is not sent and
        # hashed again with every tick and every lease renewal.
        self._publish_script = self._client.register_script(_PUBLISH)
        self._renew_script = self._client.register_script(_RENEW)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._lead())]

    def stop(self) -> None:
        """The market is shared: this process keeps following it while it serves."""

    async def close(self, release: bool = True) -> None:
        """Stop following; with ``release``, hand the lease over at once (not on expiry).

        The loops stop at their next turn (a blocking read returns within a second):
        cancelling a Redis command midway can leave the client waiting forever.
        """
        self._closing = True
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
        self._tasks = []
        if self._client is not None:
            if release and self.is_leader:
                try:
                    await self._client.eval(
                        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                        "return redis.call('DEL', KEYS[1]) end return 0",
                        1, self._lease_key, self.token,
                    )  # fmt: skip
                except Exception:  # closing anyway: the lease expires by itself
                    pass
            await self._client.aclose()
            self._client = None
        self.is_leader = False

    def _reschedule(self, *_events) -> None:
        """Ticking is the leader's, on Redis's schedule: no local timer to manage."""

    @property
    def _stream_key(self) -> str:
        return f"{self.key}:ticks"

    @property
    def _lease_key(self) -> str:
        return f"{self.key}:leader"

    @property
    def _seeds_key(self) -> str:
        return f"{self.key}:seeds"

    async def _follow(self) -> None:
        """Read every tick of the stream after the newest held, and tell subscribers."""
        import redis

        backoff = 0.1
        while not self._closing:
            try:
                last = f"{self.last_seq}-1" if self.last_seq >= 0 else "0-0"
                self.redis_commands += 1
                reply = await self._client.xread({self._stream_key: last}, count=1000, block=1000)
                self._connected()
                backoff = 0.1
                for _, entries in reply:
                    self._ingest(entries)
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as error:
                self._cut_off(error)
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _ingest(self, entries) -> None:
        times, rows = [], []
        for entry_id, fields in entries:
            seq = int(entry_id.split(b"-")[0])
            expected = self.last_seq + 1 + len(times)
            if seq < expected:
                continue  # re-published after Redis came back: already held
            if seq > expected:
                self._append_and_notify(times, rows)
                times, rows = [], []
                if self.last_seq >= 0:
                    # Ticks that never reached this process and are no longer anywhere.
                    log.warning("market jumped from tick %d to %d", self.last_seq, seq)
                self._ring.restart_at(seq)
            times.append(float(fields[b"t"]))
            rows.append(np.frombuffer(fields[b"p"], dtype="<f8"))
            self._take_open(int(fields[b"d"]), fields[b"o"])
            state = fields.get(b"s")
            if state:
                self._walk_state = state.decode()
        self._append_and_notify(times, rows)

    def _take_open(self, day: int, raw: bytes) -> None:
        if day != self._open_day:
            # The market's open (the first one this process learns included): views
            # move their baseline to it.
            self._open_day = day
            self._open_prices = np.frombuffer(raw, dtype="<f8").copy()
            self._open_version += 1

    def _append_and_notify(self, times, rows) -> None:
        if not times:
            return
        with self._lock:
            self._ring.append(np.array(times), np.vstack(rows))
        self._notify()
        self._check_finished()

    async def _lead(self) -> None:
        """Hold the lease (or wait for it) and, while holding it, tick on schedule."""
        import redis

        backoff = 0.1
        while not self._closing:
            try:
                if not self.is_leader:
                    await self._try_to_lead()
                    wait = LEASE_MS / 3000
                else:
                    self.redis_commands += 1
                    if not await self._renew_script(keys=[self._lease_key],
                                                    args=[self.token, LEASE_MS]):  # fmt: skip
                        self._abdicate("its lease expired")
                        continue
                    wait = await self._tick_when_due()
                backoff = 0.1
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                raise
            except redis.ResponseError as error:
                # An XADD refused: another process published this sequence number.
                self._abdicate(f"Redis refused a tick ({error})")
            except (redis.RedisError, OSError) as error:
                self._cut_off(error)
                self.is_leader = False
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _try_to_lead(self) -> None:
        client = self._client
        self.redis_commands += 1
        if not await client.exists(self._stream_key):
            # Empty (a new market, or Redis came back without its data): the process
            # holding the newest tick leads and publishes what it holds.
            self.redis_commands += 3
            await client.zadd(self._seeds_key, {self.token: self.last_seq})
            await client.pexpire(self._seeds_key, 10 * LEASE_MS)
            await asyncio.sleep(SEED_WINDOW_S)
            best = await client.zrevrange(self._seeds_key, 0, 0, withscores=True)
            if best and best[0][0].decode() != self.token and best[0][1] > self.last_seq:
                return
        self.redis_commands += 1
        if not await client.set(self._lease_key, self.token, nx=True, px=LEASE_MS):
            return
        self.is_leader = True
        await self._take_over()

    async def _take_over(self) -> None:
        """Continue the market from the stream's newest entry (or seed the stream)."""
        client = self._client
        self.redis_commands += 1
        newest = await client.xrevrange(self._stream_key, count=1)
        if newest:
            entry_id, fields = newest[0]
            if fields.get(b"s"):
                self.walk.set_state(json.loads(fields[b"s"]))
            else:  # a re-publication cut short: go on from its prices
                prices = np.frombuffer(fields[b"p"], dtype="<f8")
                self.walk.set_state(
                    {"log_price": np.log(prices).tolist(), "prices": prices.tolist(),
                     "steps_taken": 0, "rng": None,
                     "ticks": int(entry_id.split(b"-")[0]) + 1 - self.start_seq}
                )  # fmt: skip
            self._published = int(entry_id.split(b"-")[0])
            self._published_time = float(fields[b"t"])
            self._open_day_sent = int(fields[b"d"])
            self._published_open = fields[b"o"]
            log.info("leading the market from tick %d", self._published)
            return
        if self.last_seq >= 0 and self._walk_state is not None:
            held = self.since(-1)
            self.walk.set_state(json.loads(self._walk_state))
            log.warning(
                "Redis holds no market: re-publishing ticks %d-%d held here and leading on",
                held.seq[0], held.seq[-1],
            )  # fmt: skip
            open_raw = self._open_prices.astype("<f8").tobytes()
            day = self._open_day if self._open_day is not None else 0
            entries = [
                (int(s), float(t), p, open_raw, day, self._walk_state if s == held.seq[-1] else "")
                for s, t, p in zip(held.seq, held.time, held.prices, strict=True)
            ]
            self._open_day_sent, self._published_open = day, open_raw
            await self._publish(entries)
            return
        # A new market: backdated warm-up ticks, so the first visitor sees a chart.
        self._published, self._published_time = -1, float("nan")
        self._open_day_sent = None
        if self.warmup:
            now = time.time() * 1000.0
            prices = self.walk.step(self.warmup)  # fewer from a short replay
            times = now - self.tick * 1000.0 * np.arange(len(prices) - 1, -1, -1)
            await self._publish(self._entries(times, prices))
        log.info("leading a new market")

    def _entries(self, times, prices) -> list[tuple]:
        entries = []
        last = len(times) - 1
        for i, (t, p) in enumerate(zip(times, prices, strict=True)):
            day = int(t // _DAY_MS)
            if day != self._open_day_sent:
                self._open_day_sent = day
                self._published_open = p.astype("<f8").tobytes()
            state = json.dumps(self.walk.get_state()) if i == last else ""
            entries.append((self._published + 1 + i, float(t), p, self._published_open, day, state))
        return entries

    async def _publish(self, entries: list[tuple]) -> None:
        for chunk in range(0, len(entries), 500):
            if self._closing:
                return
            batch = entries[chunk : chunk + 500]
            args = [self.token, self.history]
            for seq, t, p, open_raw, day, state in batch:
                args += [f"{seq}-1", repr(t), np.asarray(p, "<f8").tobytes(), open_raw, day, state]
            self.redis_commands += 1
            if not await self._publish_script(keys=[self._lease_key, self._stream_key], args=args):
                self._abdicate("its lease was taken")
                return
            self._published, self._published_time = batch[-1][0], batch[-1][1]

    async def _tick_when_due(self) -> float:
        """Publish the next tick if due; seconds until the next thing to do."""
        now = time.time() * 1000.0
        due = self._published_time + self.tick * 1000.0
        if self.paused or getattr(self.walk, "remaining", None) == 0:  # or a replay ended
            return LEASE_MS / 3000
        if not np.isfinite(due) or now >= due - 1.0:
            # One tick at a time: a late leader (after a failover, an outage) does not
            # make up the ticks nobody made.
            await self._publish(self._entries(np.array([now]), self.walk.step(1)))
            due = now + self.tick * 1000.0
        return max(0.0, min(LEASE_MS / 3000, (due - time.time() * 1000.0) / 1000.0))

    def _abdicate(self, why: str) -> None:
        if self.is_leader:
            log.warning("no longer leading the market: %s", why)
        self.is_leader = False

    def _connected(self) -> None:
        if self.stalled:
            log.info(
                "following the market on Redis at %s from tick %d",
                redacted(self.url),
                self.last_seq,
            )
            self.stalled = False
            self._notify_state()

    def _cut_off(self, error) -> None:
        if not self.stalled:
            log.warning("Redis at %s unreachable (%s); retrying", redacted(self.url), error)
            self.stalled = True
            self._notify_state()
