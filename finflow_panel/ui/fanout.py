"""Deliver one tick's updates to many server sessions from a few loop callbacks.

Bokeh's own route for a change to a session's document is one next-tick callback per
session: acquire the document lock, apply the change, turn the event into a message
(walking the document's models), then send it frame by frame under the connection's
write lock. At ~0.7 ms a session that caps one process at a few hundred sessions a second.

Sessions on the same feed that hold the same rows need the same update, whatever
portfolio each shows (it is valued in the browser from the market's prices), so `FanOut`
works out each distinct update once per tick and hands it to every session due for it
(`LiveDashboard._deliver`):

* the new server-side columns are computed once and *shared* by those sessions' sources
  (Bokeh replaces column arrays on stream, it never writes into them), which also keeps
  one copy of the history instead of one per session. They are read-only, and the
  sources refuse clients' edits (`charts.chart_source`), so no session can change
  another's rows;
* the PATCH-DOC message - the same ``ColumnsStreamed`` event Bokeh would send - is
  serialized once, and only the source id differs between sessions;
* it is written to each session's websocket at once, as Panel itself writes its
  messages (``panel.io.document.dispatch_tornado``).

A session whose document or connection is busy (a callback holds the document lock, or
Bokeh is part-way through writing a message) falls back to Bokeh's route for that
update, as does any update that is not a few rows of JSON.

The Bokeh/Tornado internals this relies on are read in this module only, each with a
safe answer when it is not what is expected (``BokehWire``).
"""

from __future__ import annotations

import itertools
import json
import logging
import struct
import time
import weakref
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

__all__ = ["BokehWire", "FanOut", "SharedUpdate", "text_frame"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SharedUpdate:
    """One update as every session holding the same rows receives it."""

    last_seq: int
    rows: int
    last_time: float
    missed: int
    columns: dict  # the source's new columns (after rollover), shared by the sessions
    content_head: str  # the PATCH-DOC content up to the source id ...
    content_tail: str  # ... and after it

    @classmethod
    def build(cls, batch, old: dict, new: dict, rollover: int) -> SharedUpdate | None:
        """The update that streams ``new`` (numpy columns of ``batch``) onto ``old``.

        None when the rows cannot travel as plain JSON (a non-finite number).
        """
        try:
            entries = json.dumps(
                [[name, column.tolist()] for name, column in new.items()],
                separators=(",", ":"),
                allow_nan=False,
            )
        except ValueError:
            return None
        columns = {}
        for name, column in new.items():
            merged = np.concatenate((old[name], column)) if name in old else column
            merged = merged[-rollover:] if len(merged) > rollover else merged
            merged.flags.writeable = False
            columns[name] = merged
        return cls(
            last_seq=batch.last_seq,
            rows=len(batch),
            last_time=float(batch.time[-1]),
            missed=batch.missed,
            columns=columns,
            content_head='{"events":[{"kind":"ColumnsStreamed","model":{"id":"',
            content_tail=(
                '"},"attr":"data","data":{"type":"map","entries":'
                f'{entries}}},"rollover":{int(rollover)}}}]}}'
            ),
        )

    def content(self, source_id: str) -> str:
        return self.content_head + source_id + self.content_tail


class BokehWire:
    """Write a prepared PATCH-DOC straight to a server session's websockets.

    Everything here reads Bokeh server and Tornado internals (checked against Bokeh
    3.9 and Tornado 6); where one is missing or busy the answer is "not now", and the
    caller uses Bokeh's own route instead.
    """

    _ids = itertools.count(1)

    @staticmethod
    def _session(doc):
        return getattr(getattr(doc, "session_context", None), "_session", None)

    @staticmethod
    def _handlers(session):
        for connection in getattr(session, "_subscribed_connections", ()):
            yield getattr(connection, "_socket", None)

    @classmethod
    def connected(cls, doc) -> bool:
        """False only when the session is known to have no connection (its browser has
        gone); True where Bokeh's internals do not say."""
        connections = getattr(cls._session(doc), "_subscribed_connections", None)
        return connections is None or len(connections) > 0

    @classmethod
    def backlog(cls, doc) -> int:
        """Bytes queued on the session's websockets but not yet sent."""
        total = 0
        for socket in cls._handlers(cls._session(doc)):
            stream = getattr(getattr(socket, "ws_connection", None), "stream", None)
            if stream is not None:
                total += stream._total_write_index - stream._total_write_done_index
        return total

    @classmethod
    def sockets(cls, doc) -> list | None:
        """The session's open websockets if a message may be written now, else None."""
        session = cls._session(doc)
        # Bokeh holds a list of pending writes while a callback holds the document lock,
        # and keeps the lock while it then writes them: the writes of one callback wait
        # there (for the connection's write lock, say) with the list already gone.
        if session is None or getattr(session, "_pending_writes", True) is not None:
            return None
        lock = getattr(getattr(session, "_lock", None), "_block", None)
        if getattr(lock, "_value", 0) != 1:
            return None
        # A message Panel made while the document was locked waits for a later turn of
        # the loop: one written now would overtake it (a session saw tick 153 before 152).
        if _panel_pending(doc):
            return None
        sockets = []
        for socket in cls._handlers(session):
            ws = getattr(socket, "ws_connection", None)
            if ws is None or ws.is_closing() or getattr(ws, "_compressor", None) is not None:
                return None
            block = getattr(getattr(socket, "write_lock", None), "_block", None)
            if getattr(block, "_value", 0) != 1:  # Bokeh is writing a message now
                return None
            sockets.append(ws)
        return sockets or None

    @classmethod
    def send_patch(cls, sockets: list, content: str) -> None:
        """Write one PATCH-DOC (header, metadata, content; no buffers) to each socket.

        The three frames go to the stream in one write, so nothing can come between
        them, and with one system call instead of three.
        """
        header = f'{{"msgid": "ff{next(cls._ids)}", "msgtype": "PATCH-DOC", "num_buffers": 0}}'
        data = text_frame(header.encode()) + text_frame(b"{}") + text_frame(content.encode())
        for ws in sockets:
            try:
                ws.stream.write(data)
            except StreamClosedError:
                pass  # the connection's own close handling releases the session


def _panel_pending(doc) -> bool:
    """Whether Panel holds messages for ``doc`` to write in a later turn of the loop."""
    from panel.io import document

    if doc in getattr(document, "_WRITE_MSGS", ()) or doc in getattr(document, "_WRITE_BLOCK", ()):
        return True
    return any(not task.done() for task in getattr(document, "_write_tasks", {}).get(doc, ()))


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


class FanOut:
    """Runs due sessions' deliveries in loop callbacks of at most ``slice_seconds``.

    Sessions are queued once per tick at most (each has at most one pending delivery),
    so the queue is bounded by the number of sessions. Updates worked out in one
    callback are reused by every session in it that holds the same rows.
    """

    _by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, loop: IOLoop, slice_seconds: float = 0.02) -> None:
        self._loop = loop
        self.slice_seconds = slice_seconds
        self._queue: deque = deque()
        self._scheduled = False
        #: Updates sent by route: "shared" (written here) and "bokeh" (handed back).
        self.routes: Counter = Counter()

    @classmethod
    def current(cls) -> FanOut:
        loop = IOLoop.current()
        fanout = cls._by_loop.get(loop)
        if fanout is None:
            fanout = cls._by_loop[loop] = cls(loop)
        return fanout

    def enqueue(self, dashboard) -> None:
        self._queue.append(dashboard)
        if not self._scheduled:
            self._scheduled = True
            self._loop.add_callback(self._run)

    def _run(self) -> None:
        self._scheduled = False
        updates: dict = {}
        deadline = time.perf_counter() + self.slice_seconds
        queue = self._queue
        while queue:
            dashboard = queue.popleft()
            try:
                route = dashboard._deliver(updates)
                if route:
                    self.routes[route] += 1
            except Exception:
                log.exception("delivering an update to %r failed", dashboard)
            if queue and time.perf_counter() > deadline:
                # Let the loop serve sockets and new sessions, then carry on.
                self._scheduled = True
                self._loop.add_callback(self._run)
                return
