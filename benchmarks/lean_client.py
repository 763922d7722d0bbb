"""A lean Bokeh protocol reader for load benchmarks: many sessions in one process.

``finflow_panel.client.SessionClient`` goes through Tornado's websocket client, a few
coroutines and futures per frame: about 0.5 ms of client CPU per update, three times
what the server spends sending it. A benchmark reading a thousand sessions then measures
its own queue (the last of a tick's thousand updates is read hundreds of ms after it
arrived), where every browser would read its own at once. This reader parses frames in
``asyncio.Protocol.data_received``, stamps each message when its last frame arrives, and
decodes only the ``seq`` and ``time`` columns of streamed rows.

It speaks just enough of the protocol: the websocket handshake with the session token,
ACK, PULL-DOC (the reply is skipped), ``document_ready``, pong for pings, and reading
PATCH-DOC messages with or without binary buffers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import struct
import time
from urllib.parse import urlsplit

import numpy as np
from tornado.httpclient import AsyncHTTPClient

from finflow_panel.client import _TOKEN, _decode

__all__ = ["LeanSession", "open_lean"]

_COLUMNS = ("seq", "time")
_TIME_SEQ = re.compile(rb'"entries":\[\["time",\[([^\]]+)\]\],\["seq",\[([^\]]+)\]\]')


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked frame, as clients must send them (RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)
    return head + mask + masked.tobytes()


class LeanSession(asyncio.Protocol):
    """One session's connection. ``on_rows(seq, time_ms, received_s)`` gets the rows of
    every streamed update, once the session is ready (after ``document_ready``)."""

    def __init__(self, host: str, path: str, token: str, on_rows, cookie: str = "") -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            + (f"Cookie: {cookie}\r\n" if cookie else "")
            + f"Sec-WebSocket-Protocol: bokeh, {token}\r\n\r\n"
        ).encode()
        self._on_rows = on_rows
        self._buffer = bytearray()
        self._upgraded = False
        self._message: list = []  # frames of the message being read
        self._expected = 3
        self._ids = 0
        #: Updates read on the fast path (the fan-out's JSON messages).
        self.fast_reads = 0
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()  # set on the PULL-DOC reply
        self.closed = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self._request)

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[: buffer.find(b"\r\n")])
            if b" 101 " not in status:
                self.ready.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            del buffer[: end + 4]
            self._upgraded = True
        received = time.time()
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            b0, b1 = buffer[offset], buffer[offset + 1]
            length, start = b1 & 0x7F, offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, start)
                start += 2
            elif length == 127:
                if size - offset < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, start)
                start += 8
            if size - start < length:
                break
            payload = bytes(buffer[start : start + length])
            offset = start + length
            self._frame(b0 & 0x0F, payload, received)
        del buffer[:offset]

    # -- protocol ----------------------------------------------------------------------

    def _frame(self, opcode: int, payload: bytes, received: float) -> None:
        if opcode == 0x9:  # ping
            self.transport.write(_client_frame(0xA, payload))
            return
        if opcode == 0x8:  # close
            self.transport.close()
            return
        if opcode not in (0x1, 0x2):
            return
        message = self._message
        message.append(payload)
        if len(message) == 1:
            header = json.loads(payload)
            self._expected = 3 + 2 * header.get("num_buffers", 0)
        if len(message) == self._expected:
            self._message = []
            self._handle(message, received)

    def _handle(self, frames: list[bytes], received: float) -> None:
        header = json.loads(frames[0])
        kind = header["msgtype"]
        if kind == "ACK":
            self.send("PULL-DOC-REQ", {})
        elif kind == "PULL-DOC-REPLY":
            event = {
                "kind": "MessageSent",
                "msg_type": "bokeh_event",
                "msg_data": {"type": "event", "name": "document_ready",
                             "values": {"type": "map", "entries": []}},
            }  # fmt: skip
            self.send("PATCH-DOC", {"events": [event]})
            self.ready.set_result(None)
        elif kind == "PATCH-DOC" and b"ColumnsStreamed" in frames[2]:
            content = frames[2]
            # The fan-out's own messages (one event, JSON columns, time and seq first):
            # read those two columns without parsing every price of the universe.
            fast = _TIME_SEQ.search(content) if len(frames) == 3 else None
            if fast is not None and content.count(b"ColumnsStreamed") == 1:
                times = np.array([float(x) for x in fast.group(1).split(b",")])
                seq = np.array([int(x) for x in fast.group(2).split(b",")])
                self.fast_reads += 1
                self._on_rows(seq, times, received)
                return
            buffers = {}
            for ref, raw in zip(frames[3::2], frames[4::2], strict=True):
                buffers[json.loads(ref)["id"]] = raw
            for event in json.loads(frames[2])["events"]:
                if event.get("kind") != "ColumnsStreamed":
                    continue
                entries = dict(event["data"]["entries"])
                if all(name in entries for name in _COLUMNS):
                    seq, times = (_decode(entries[name], buffers) for name in _COLUMNS)
                    self._on_rows(seq, times, received)

    def send(self, msgtype: str, content: dict) -> None:
        self._ids += 1
        header = json.dumps({"msgid": f"lean{self._ids}", "msgtype": msgtype}).encode()
        self.transport.write(
            _client_frame(0x1, header)
            + _client_frame(0x1, b"{}")
            + _client_frame(0x1, json.dumps(content).encode())
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_lean(url: str, on_rows, timeout: float = 300.0, cookie: str = "") -> LeanSession:
    """GET the page at ``url`` (a new session), connect to its websocket, pull and
    announce ``document_ready``; return the session once it is ready. ``cookie``: sent
    with both requests (a signed-in user's)."""
    headers = {"Cookie": cookie} if cookie else None
    response = await AsyncHTTPClient().fetch(url, request_timeout=timeout, headers=headers)
    match = _TOKEN.search(response.body.decode())
    if match is None:
        raise RuntimeError(f"no Bokeh session token in the page at {url}")
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/ws"
    loop = asyncio.get_running_loop()
    _, session = await loop.create_connection(
        lambda: LeanSession(parts.netloc, path, match.group(1), on_rows, cookie),
        parts.hostname,
        parts.port,
    )
    await asyncio.wait_for(session.ready, timeout)
    return session
