"""The live clock: one shared market per process, fanned out to subscribers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Protocol

import numpy as np
import param

from ..sim import RandomWalk
from .alerts import AlertBook
from .ring import TickBatch, TickRing

__all__ = ["MAX_HISTORY", "SharedFeed", "Subscriber"]

log = logging.getLogger(__name__)

_DAY_MS = 86_400_000
#: The most ticks a feed keeps.
MAX_HISTORY = 10_000_000


class Subscriber(Protocol):
    """Anything with ``on_tick(feed)``; called on the feed's event loop after each tick.

    A subscriber may also have ``on_feed_state(feed)``, called when a feed that can be
    cut off from its market (`RedisFeed`) stalls or recovers.
    """

    def on_tick(self, feed: SharedFeed) -> None: ...


class SharedFeed(param.Parameterized):
    """A ticking market shared by every session of a process.

    Each tick is one vectorized `RandomWalk.step` for all symbols, timestamped in epoch
    milliseconds, numbered with a sequence number and kept in a ring buffer of the last
    ``history`` ticks. Subscribers are told after each tick and read what they need with
    `since`; the feed never touches a Bokeh Document.

    The timer is a Tornado ``PeriodicCallback`` on the event loop that is current when
    the feed starts (Bokeh's server loop, or the Jupyter kernel's). It runs while at least
    one subscriber exists or an alert is set (`alerts`), or always with ``always_on``;
    with ``manual=True`` there is no timer at all and tests drive ticks with `advance`.

    Parameters
    ----------
    walk : RandomWalk, Replay or another market source
        What each tick steps (see `finflow_panel.sim.replay`); its symbols are the
        feed's symbols. A source that runs out (a `Replay` without looping) ends the
        feed: `finished` becomes True and the clock stops for good.
    """

    tick = param.Number(
        default=1.0, bounds=(0.01, 3600.0), doc="Seconds between ticks of the market clock."
    )
    history = param.Integer(
        default=2000, bounds=(1, MAX_HISTORY), constant=True, doc="Ticks kept in the ring buffer."
    )
    always_on = param.Boolean(default=False, doc="Tick even when nobody is subscribed.")
    paused = param.Boolean(default=False, doc="Stop the market clock (subscribers stay).")
    start_seq = param.Integer(
        default=0,
        bounds=(0, None),
        constant=True,
        doc="Sequence number of the first tick (a feed continuing another's numbering).",
    )
    manual = param.Boolean(
        default=False, constant=True, doc="No timer: ticks happen only through advance()."
    )
    finished = param.Boolean(
        default=False, doc="Whether the market source has run out (a replay's last row)."
    )

    def __init__(self, walk: RandomWalk, **params) -> None:
        super().__init__(**params)
        self.walk = walk
        self.symbols = walk.symbols
        self._ring = TickRing(walk.symbols, self.history, self.start_seq)
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._timer = None
        self._open_prices = walk.prices
        self._open_day: int | None = None
        self._open_version = 0
        self._alerts: AlertBook | None = None
        self._alerts_seq = -1
        self.param.watch(self._reschedule, ["tick", "paused", "always_on"])
        if self.always_on:
            self.start()

    def __repr__(self) -> str:
        return (
            f"SharedFeed({len(self.symbols)} symbols, tick={self.tick}s, "
            f"last_seq={self.last_seq}, subscribers={self.subscriber_count})"
        )

    # -- reading ----------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest tick, -1 before the first."""
        return self._ring.last_seq

    @property
    def last_time(self) -> float:
        """Epoch milliseconds of the newest tick (nan before the first)."""
        return self._ring.last_time

    def since(self, seq: int) -> TickBatch:
        """Every held tick after sequence number ``seq``."""
        return self._ring.since(seq)

    def latest(self, n: int) -> TickBatch:
        """The newest ``n`` ticks (fewer if fewer exist)."""
        return self._ring.since(-1, limit=n)

    @property
    def prices(self) -> np.ndarray:
        """The newest price of each symbol."""
        return self.walk.prices

    @property
    def open_prices(self) -> np.ndarray:
        """Prices at the start of the current (UTC) day, or at the feed's start."""
        return self._open_prices.copy()

    @property
    def open_version(self) -> int:
        """Counts changes of `open_prices` (one per new day): cheap to compare per tick."""
        return self._open_version

    @property
    def tick_rate(self) -> float:
        """Measured ticks per second over the newest ticks (0 before two ticks)."""
        recent = self.latest(20).time
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) * 1000.0 / float(recent[-1] - recent[0])

    # -- ticking ----------------------------------------------------------------------------

    @property
    def source(self):
        """The market source each tick steps (`walk`, by its historical name)."""
        return self.walk

    def label(self, seq: int) -> str | None:
        """The source's own time of tick ``seq`` (a replayed row's date), if it has one."""
        label = getattr(self.walk, "label", None)
        return None if label is None else label(seq - self.start_seq)

    def labels(self, first_seq: int, count: int) -> list[str] | None:
        """`label` of up to ``count`` ticks from ``first_seq`` on (fewer at a replay's
        end; None when the source has none)."""
        if self.label(first_seq) is None:
            return None
        labels = []
        for seq in range(first_seq, first_seq + count):
            label = self.label(seq)
            if label is None:  # past a replay's end
                break
            labels.append(label)
        return labels

    def _check_finished(self) -> None:
        # From the ticks held, not the source's own count: a process following another's
        # market (`RedisFeed`) never steps its copy of the source.
        ends_after = getattr(self.walk, "ends_after", None)
        if self.finished or ends_after is None:
            return
        if self.last_seq + 1 - self.start_seq >= ends_after:
            log.info("the market source ended at tick %d", self.last_seq)
            self.finished = True
            self.stop()
            self._notify_state()

    def advance(self, n: int = 1, now_ms: float | None = None) -> TickBatch:
        """Generate ``n`` ticks ending at ``now_ms`` (default: now) and notify subscribers.

        Fewer (none) when the source runs out: the feed is then `finished`.
        """
        now_ms = time.time() * 1000.0 if now_ms is None else float(now_ms)
        remaining = getattr(self.walk, "remaining", None)
        if remaining is not None:
            n = min(n, remaining)
            if n <= 0:
                self._check_finished()
                return self._ring.since(self.last_seq)
        with self._lock:
            first = self.last_seq
            prices = self.walk.step(n)
            times = now_ms - self.tick * 1000.0 * np.arange(n - 1, -1, -1)
            day = int(now_ms // _DAY_MS)
            if self._open_day is None:
                self._open_day = day
            elif day != self._open_day:
                self._open_day = day
                self._open_prices = prices[0].copy()
                self._open_version += 1
            self._ring.append(times, prices)
        self._notify()
        self._check_finished()
        return self._ring.since(first)

    def _notify_state(self) -> None:
        for subscriber in list(self._subscribers):
            on_state = getattr(subscriber, "on_feed_state", None)
            if on_state is None:
                continue
            try:
                on_state(self)
            except Exception:
                log.exception("subscriber %r failed on a change of feed state", subscriber)

    @property
    def alerts(self) -> AlertBook:
        """Every price alert on this market, checked on each tick before subscribers hear
        of it: ``feed.alerts.add("AAPL", "above", 190, callback=print)``."""
        if self._alerts is None:
            self._alerts = AlertBook(self.symbols)
            self._alerts_seq = self.last_seq
            self._alerts.on_empty_change = self._on_alerts_set
        return self._alerts

    def _on_alerts_set(self) -> None:
        # The clock runs while anyone subscribes or any alert is set.
        if self._wanted() != self.running:
            self._reschedule()

    def _check_alerts(self) -> None:
        book = self._alerts
        if book is None:
            return
        if book:
            # At most the newest 100 ticks (a feed catching up after an outage).
            batch = self._ring.since(max(self._alerts_seq, self.last_seq - 100))
            try:
                book.evaluate_batch(batch, self._open_prices)
            except Exception:
                log.exception("checking alerts on tick %d failed", self.last_seq)
        self._alerts_seq = self.last_seq

    def _notify(self) -> None:
        self._check_alerts()
        for subscriber in list(self._subscribers):
            try:
                subscriber.on_tick(self)
            except Exception:  # one broken session must not stop the market
                log.exception("subscriber %r failed on tick %d", subscriber, self.last_seq)

    @property
    def running(self) -> bool:
        """Whether the timer is installed and ticking."""
        return self._timer is not None

    def start(self) -> None:
        """Install the timer on the current event loop (no-op if manual, paused, finished
        or running)."""
        if self.manual or self.paused or self.finished or self._timer is not None:
            return
        from tornado.ioloop import PeriodicCallback

        self._timer = PeriodicCallback(self._on_timer, self.tick * 1000.0)
        self._timer.start()

    def stop(self) -> None:
        """Remove the timer; the ring buffer and subscribers stay."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()

    def _on_timer(self) -> None:
        self.advance(1)

    def _wanted(self) -> bool:
        alerts = self._alerts is not None and bool(self._alerts)
        wanted = self.always_on or bool(self._subscribers) or alerts
        return wanted and not (self.paused or self.finished)

    def _reschedule(self, *_events) -> None:
        self.stop()
        if self._wanted():
            self.start()

    # -- subscribers ------------------------------------------------------------------------

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber and start the clock if needed; returns the unsubscribe call."""
        self._subscribers.append(subscriber)
        if self._wanted():
            self.start()
        return lambda: self.unsubscribe(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Remove a subscriber (idempotent); the clock stops when nobody is left."""
        try:
            self._subscribers.remove(subscriber)
        except ValueError:
            return
        if not self._wanted():
            self.stop()

    # -- one feed per process ---------------------------------------------------------------

    _process_feeds: dict[Hashable, SharedFeed] = {}

    @classmethod
    def for_process(cls, key: Hashable, factory: Callable[[], SharedFeed]) -> SharedFeed:
        """The process-wide feed for ``key``, made by ``factory`` on first use.

        ``panel serve`` runs an app script afresh for every session; the feed lives here,
        in an imported module, so all sessions of a process share one market.
        """
        feed = cls._process_feeds.get(key)
        if feed is None:
            feed = cls._process_feeds[key] = factory()
        return feed
