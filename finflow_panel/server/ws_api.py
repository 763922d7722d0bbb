"""The original JSON WebSocket protocol at ``/ws/portfolio/``, for mobile apps, bots and
terminals: text frames of one JSON object each, with a ``type``.

Client -> server: ``get_portfolio_data``, ``start_updates`` (``interval`` seconds),
``stop_updates``, and price alerts: ``add_alert``, ``remove_alert``, ``get_alerts``.
Server -> client: ``connection_established``, ``portfolio_data``, ``price_update``,
``alert_added``, ``alert_removed``, ``alerts``, ``alert`` (one fired) and ``error``. The
README documents every message.

A signed-in user's alerts are theirs wherever they were added (the dashboard, any
connection) and fire to all their connections; an anonymous connection's alerts are
its own and end with it.

A connection with updates started is a subscriber of the shared feed, as a dashboard is.
On each tick the connections due for an update are grouped by the portfolio they follow:
each portfolio is valued once and its message serialized once, then written to all of
them. A connection that has not taken in its last update yet is skipped, and is sent
the newest state as soon as it has: a slow client never makes a queue.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import weakref
from collections import deque
from urllib.parse import urlsplit

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..feed import AlertError, AlertEvent
from ..feed.alerts import SessionAlerts, SignedInAlerts
from ..model import Portfolio
from ..store import StoreError, StoreUnavailable
from ..ui.fanout import text_frame
from .alerts import user_alerts
from .api import PortfolioService, signed_in_user

__all__ = ["MAX_FRAME_BYTES", "PortfolioSocket", "PortfolioStreams", "ws_routes"]

log = logging.getLogger(__name__)

#: The largest frame a client may send; a larger one closes the connection (code 1009).
MAX_FRAME_BYTES = 64 * 1024
#: ``start_updates``' default interval (seconds), as in the original consumer.
DEFAULT_INTERVAL = 5.0
INTERVAL_BOUNDS = (0.1, 60.0)
#: Messages a client may send in a burst, and per second after it.
BURST, RATE = 20, 10.0
#: Replies a client may leave unread before the connection is closed (code 1008).
MAX_UNREAD = 64
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Each message type and the fields it may carry besides ``type``.
_FIELDS = {
    "get_portfolio_data": ("portfolio_id",),
    "start_updates": ("interval", "portfolio_id"),
    "stop_updates": (),
    "add_alert": ("target", "condition", "value", "portfolio_id"),
    "remove_alert": ("alert_id",),
    "get_alerts": (),
}


class ClientError(ValueError):
    """A message the protocol refuses; its text is sent back as an ``error``."""


def _message(kind: str, data_json: str) -> str:
    return f'{{"type":"{kind}","data":{data_json}}}'


class PortfolioStreams:
    """Valuations per tick, shared by every connection following the same portfolio.

    One per process and service; connections enqueue themselves when due on a tick, and
    one loop callback serves them all.
    """

    def __init__(self, service: PortfolioService) -> None:
        self.service = service
        self._seq = None
        self._data: dict[Portfolio, str] = {}  # portfolio -> its data as JSON, this tick
        self._queue: deque = deque()
        self._scheduled = False
        self.valuations = 0  # portfolios valued (for tests and benchmarks)
        self.rounds = 0  # loop callbacks that served due connections

    @property
    def feed(self):
        return self.service.feed

    def data_json(self, portfolio: Portfolio) -> str:
        """``portfolio`` valued at the newest tick, as JSON: once per tick however many
        connections (or repeated requests) ask."""
        feed = self.feed
        if feed.last_seq != self._seq:
            self._seq = feed.last_seq
            self._data.clear()
        data = self._data.get(portfolio)
        if data is None:
            snapshot = self.service.snapshot(portfolio)
            data = self._data[portfolio] = json.dumps(snapshot, separators=(",", ":"))
            self.valuations += 1
        return data

    def enqueue(self, connection: PortfolioSocket) -> None:
        self._queue.append(connection)
        if not self._scheduled:
            self._scheduled = True
            IOLoop.current().add_callback(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self.rounds += 1
        queue, self._queue = self._queue, deque()
        frames: dict[Portfolio, bytes] = {}
        for connection in queue:
            portfolio = connection.portfolio
            frame = frames.get(portfolio)
            if frame is None:
                try:
                    message = _message("price_update", self.data_json(portfolio))
                except (StoreUnavailable, StoreError, ValueError) as error:
                    log.warning("cannot value portfolio %r: %s", portfolio.portfolio_id, error)
                    continue
                # Framed once, written as is to every connection following it.
                frame = frames[portfolio] = text_frame(message.encode())
            connection.send_update(frame, self._seq)


_streams: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _streams_for(service: PortfolioService) -> PortfolioStreams:
    streams = _streams.get(service)
    if streams is None:
        streams = _streams[service] = PortfolioStreams(service)
    return streams


class PortfolioSocket(WebSocketHandler):
    """One client of ``/ws/portfolio/``: the portfolio it follows and its updates."""

    def initialize(self, service: PortfolioService, origins) -> None:
        self.service = service
        self.streams = _streams_for(service)
        self._origins = origins
        self._loop = IOLoop.current()
        self.user: str | None = None
        self.portfolio: Portfolio = service.server_portfolio
        self.interval: float | None = None  # None: updates stopped
        self._due = 0.0  # when the next update is due (time.monotonic())
        self._last_sent = -1
        self._writing = None  # the newest update's write, until the client has it
        self._owed = False  # an update was skipped while that write was pending
        self._unread = 0
        self._tokens = float(BURST)
        self._told = False  # this run of dropped messages has been reported
        self._refilled = time.monotonic()
        self._unsubscribe_feed = None
        self._unsubscribe_store = None
        self._alerts = None
        self._closed = False

    # -- the handshake: who is asking, from where, how much they may send ----------------

    @property
    def max_message_size(self) -> int:
        return MAX_FRAME_BYTES

    def get_compression_options(self) -> None:
        """No permessage-deflate: every follower takes the same prepared frame."""
        return None

    def check_origin(self, origin: str) -> bool:
        # Called only when a browser sends an Origin; native clients send none.
        host = urlsplit(origin).netloc.lower()
        allowed = self._origins()
        return host == self.request.host.lower() or host in allowed or "*" in allowed

    async def get(self, *args, **kwargs) -> None:
        try:
            self.user = signed_in_user(self, self.service)
        except PermissionError as error:
            self.set_status(401)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": str(error)}))
            return
        await super().get(*args, **kwargs)

    async def open(self) -> None:
        try:
            portfolios = await self.service.portfolios(self.user)
        except (StoreUnavailable, StoreError) as error:
            log.warning("JSON API: portfolios of %r unavailable: %s", self.user, error)
            self._send({"type": "error", "message": f"portfolios are unavailable: {error}"})
            self.close(1011, "portfolios are unavailable")
            return
        if self._closed:
            return
        self.portfolio = portfolios[0]
        if self.user is not None:
            self._unsubscribe_store = self.service.store.subscribe(self.user, self._on_store_change)
            self._alerts = SignedInAlerts(user_alerts(self.service), self.user, self._on_alert)
        else:
            self._alerts = SessionAlerts(self.streams.feed.alerts, self._on_alert)
        self._send(
            {
                "type": "connection_established",
                "message": "Connected to portfolio updates",
                "portfolio_id": self.portfolio.portfolio_id,
                "portfolio_name": self.portfolio.name,
                "user": self.user,
                "portfolios": [
                    {"portfolio_id": p.portfolio_id, "portfolio_name": p.name} for p in portfolios
                ],
                "symbols": list(self.service.universe.symbols),
                "tick": self.streams.feed.tick,
            }
        )

    def on_close(self) -> None:
        self._closed = True
        self._stop()
        if self._unsubscribe_store is not None:
            self._unsubscribe_store()
            self._unsubscribe_store = None
        if self._alerts is not None:
            self._alerts.close()

    # -- messages from the client --------------------------------------------------------

    async def on_message(self, frame) -> None:
        if not self._take_token():
            return
        try:
            request = self._parse(frame)
            kind = request["type"]
            if kind == "get_portfolio_data":
                await self._follow(request)
                self._send_data("portfolio_data")
            elif kind == "start_updates":
                interval = self._interval(request)
                await self._follow(request)
                self._start(interval)
            elif kind == "stop_updates":
                self._stop()
            else:
                await self._on_alert_message(kind, request)
        except (ClientError, AlertError) as error:
            self._send({"type": "error", "message": str(error)})
        except StoreUnavailable as error:
            self._send({"type": "error", "message": f"portfolios are unavailable: {error}"})

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(BURST, self._tokens + (now - self._refilled) * RATE)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            self._told = False
            return True
        # Dropped; the first of a run of dropped messages is reported.
        if not self._told:
            self._told = True
            self._send(
                {
                    "type": "error",
                    "message": f"too many messages: at most {RATE:g} a second; "
                    "messages are dropped until the rate falls",
                }
            )
        return False

    @staticmethod
    def _parse(frame) -> dict:
        if isinstance(frame, bytes):
            raise ClientError("send text frames of JSON, not binary frames")
        try:
            request = json.loads(frame)
        except ValueError as error:
            raise ClientError(f"the message is not JSON: {error}") from None
        if not isinstance(request, dict):
            raise ClientError(f"the message must be a JSON object, not {type(request).__name__}")
        kind = request.get("type")
        if not isinstance(kind, str) or kind not in _FIELDS:
            raise ClientError(
                f"unknown message type {str(kind)[:64]!r}; expected one of {', '.join(_FIELDS)}"
            )
        extra = sorted(set(request) - {"type", *_FIELDS[kind]})
        if extra:
            raise ClientError(f"{kind} does not take {', '.join(repr(k[:64]) for k in extra)}")
        return request

    @staticmethod
    def _interval(request: dict) -> float:
        interval = request.get("interval", DEFAULT_INTERVAL)
        low, high = INTERVAL_BOUNDS
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not math.isfinite(interval)
            or not low <= interval <= high
        ):
            raise ClientError(
                f"interval must be a number of seconds from {low:g} to {high:g}, "
                f"got {json.dumps(interval)[:64]}"
            )
        return float(interval)

    async def _follow(self, request: dict) -> None:
        """Follow the portfolio the request names (if any): the user's own only."""
        if "portfolio_id" in request:
            self.portfolio = await self._named(request)

    async def _named(self, request: dict) -> Portfolio:
        """The user's portfolio ``request["portfolio_id"]``, or ClientError."""
        portfolio_id = request["portfolio_id"]
        if not isinstance(portfolio_id, str) or not _ID.fullmatch(portfolio_id):
            raise ClientError(
                "portfolio_id must be a string of 1-64 letters, digits, '-' or '_', "
                f"got {json.dumps(portfolio_id)[:64]}"
            )
        portfolio = await self.service.portfolio(self.user, portfolio_id)
        if portfolio is None:  # another user's reads exactly as one that never existed
            raise ClientError(f"no such portfolio: {portfolio_id!r}")
        return portfolio

    # -- alerts --------------------------------------------------------------------------

    async def _on_alert_message(self, kind: str, request: dict) -> None:
        if self._alerts is None:
            raise ClientError("the connection is not established yet")
        if kind == "get_alerts":
            self._send(
                {
                    "type": "alerts",
                    "alerts": [a.to_json() for a in self._alerts.alerts()],
                    "log": await self._alerts.history(),
                }
            )
        elif kind == "add_alert":
            value = request.get("value")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ClientError(f"value must be a number, got {json.dumps(value)[:64]}")
            for field in ("target", "condition"):
                if not isinstance(request.get(field), str):
                    raise ClientError(f"{field} must be a string")
            # A Portfolio target values the portfolio named, else the one followed.
            portfolio = await self._named(request) if "portfolio_id" in request else self.portfolio
            alert = await self._alerts.add(
                request["target"], request["condition"], value, portfolio
            )
            self._send({"type": "alert_added", "alert": alert.to_json()})
        else:
            alert_id = request.get("alert_id")
            if not isinstance(alert_id, str) or not _ID.fullmatch(alert_id):
                raise ClientError("alert_id must be a string of 1-64 letters, digits, '-' or '_'")
            if not any(a.alert_id == alert_id for a in self._alerts.alerts()):
                raise ClientError(f"no such alert: {alert_id!r}")
            await self._alerts.remove(alert_id)
            self._send({"type": "alert_removed", "alert_id": alert_id})

    def _on_alert(self, event: AlertEvent) -> None:
        """One of this connection's owner's alerts fired (on the feed's loop, this one)."""
        self._send({"type": "alert", **event.to_json()})

    # -- updates -------------------------------------------------------------------------

    def _start(self, interval: float) -> None:
        self.interval = interval
        if self._unsubscribe_feed is None:
            self._unsubscribe_feed = self.streams.feed.subscribe(self)
        # The newest state at once, then one every interval.
        self._due = 0.0
        self._last_sent = -1
        self.streams.enqueue(self)

    def _stop(self) -> None:
        self.interval = None
        if self._unsubscribe_feed is not None:
            self._unsubscribe_feed()
            self._unsubscribe_feed = None

    def on_tick(self, feed) -> None:
        """The feed ticked: join this tick's round if an update is due."""
        if self.interval is None:
            return
        # Half a tick of slack: a tick landing a little before the due time is not
        # skipped (which would halve the rate at an interval equal to the tick).
        slack = min(feed.tick, self.interval) / 2
        if time.monotonic() >= self._due - slack:
            self.streams.enqueue(self)

    def send_update(self, frame: bytes, seq: int) -> None:
        """Write one update (a whole frame) if the client has taken the last."""
        if self.interval is None or self._closed or seq == self._last_sent:
            return
        if self._writing is not None and not self._writing.done():
            self._owed = True  # sent, newest then, once the client has taken the last
            return
        # Due times step by the interval, so updates keep its rate without drifting;
        # after a stall (or the first update) they count from now.
        now = time.monotonic()
        self._due += self.interval
        if self._due < now:
            self._due = now + self.interval
        self._last_sent = seq
        self._owed = False
        self._writing = self._write_frame(frame)
        if self._writing is not None:
            self._writing.add_done_callback(self._written)

    def _write_frame(self, frame: bytes):
        """Write a prepared frame straight to the stream: Tornado's ``write_message``
        would frame the same bytes again for every connection and make a task of each
        write. Frames are written whole, so they never interleave with its own."""
        ws = self.ws_connection
        if self._closed or ws is None or ws.is_closing():
            return None
        try:
            return ws.stream.write(frame)
        except StreamClosedError:
            return None

    def _written(self, _future) -> None:
        if self._owed and not self._closed and self.interval is not None:
            self.streams.enqueue(self)

    def _send_data(self, kind: str) -> None:
        self._write(_message(kind, self.streams.data_json(self.portfolio)))

    def _send(self, message: dict) -> None:
        self._write(json.dumps(message, separators=(",", ":")))

    def _write(self, text: str):
        if self._closed or self.ws_connection is None:
            return None
        if self._unread >= MAX_UNREAD:
            self.close(1008, "too many unread messages")
            return None
        try:
            future = self.write_message(text)
        except WebSocketClosedError:
            return None
        self._unread += 1
        future.add_done_callback(self._read_one)
        return future

    def _read_one(self, _future) -> None:
        self._unread -= 1

    # -- the user's portfolios changed (any process, any thread) --------------------------

    def _on_store_change(self, _owner: str) -> None:
        self._loop.add_callback(self._reload)

    async def _reload(self) -> None:
        if self._closed:
            return
        try:
            portfolio = await self.service.portfolio(self.user, self.portfolio.portfolio_id)
            if portfolio is None:  # deleted: follow the user's first
                portfolio = (await self.service.portfolios(self.user))[0]
        except (StoreUnavailable, StoreError) as error:
            log.warning("JSON API: cannot reload %r's portfolio: %s", self.user, error)
            return
        self.portfolio = portfolio
        if self.interval is not None:
            self._last_sent = -1
            self.streams.enqueue(self)


def ws_routes(service: PortfolioService, origins) -> list[tuple]:
    return [(r"/ws/portfolio/?", PortfolioSocket, {"service": service, "origins": origins})]
