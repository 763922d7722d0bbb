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

Given a reader, a session is handed to it once ready, and its updates are read from
then on without asyncio. The client shares the cores of the servers it measures, so
what it spends per update is taken from them, and on two cores shared with two servers
that read as the servers' limit. Client CPU per update, measured with 500 sessions:

* this module's asyncio reader: about 70 us;
* `RowReader`: a thread of its own, one ``epoll`` wait for all sessions after a 1 ms
  pause (so one wakeup reads many updates), one ``os.read`` per update: about 25 us;
* `CRowReader`: the same loop in C (``row_reader.c``, built by `build_c_reader` with
  the machine's compiler): about 6 us, against the server's ~100 us to send it.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import errno
import hashlib
import json
import os
import re
import select
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from tornado.httpclient import AsyncHTTPClient

from finflow_panel.client import _TOKEN, _decode

__all__ = ["CRowReader", "LeanSession", "RowReader", "build_c_reader", "open_lean"]

_COLUMNS = ("seq", "time")
_TIME_SEQ = re.compile(rb'"entries":\[\["time",\[([^\]]+)\]\],\["seq",\[([^\]]+)\]\]')
_NUM_BUFFERS = re.compile(rb'"num_buffers":\s*(\d+)')


def _fast_rows(frames: list[bytes]) -> tuple[list[int], list[float]] | None:
    """(seq, time) of a fan-out message (one event, JSON columns, time and seq first),
    read without parsing every price of the universe; None for any other message."""
    content = frames[2]
    if len(frames) != 3 or content.count(b"ColumnsStreamed") != 1:
        return None
    fast = _TIME_SEQ.search(content)
    if fast is None:
        return None
    seq = [int(x) for x in fast.group(2).split(b",")]
    return seq, [float(x) for x in fast.group(1).split(b",")]


def _streamed_rows(frames: list[bytes]) -> list[tuple]:
    """(seq, time) arrays of every ``ColumnsStreamed`` event of a PATCH-DOC's frames
    that carries both columns, by full parsing (binary buffers included)."""
    buffers = {}
    for ref, raw in zip(frames[3::2], frames[4::2], strict=True):
        buffers[json.loads(ref)["id"]] = raw
    found = []
    for event in json.loads(frames[2])["events"]:
        if event.get("kind") != "ColumnsStreamed":
            continue
        entries = dict(event["data"]["entries"])
        if all(name in entries for name in _COLUMNS):
            found.append(tuple(_decode(entries[name], buffers) for name in _COLUMNS))
    return found


def _next_frame(data, offset: int) -> tuple[int, int, int] | None:
    """(opcode, payload start, payload end) of the whole frame at ``offset`` of
    ``data``, or None if it has not all arrived."""
    size = len(data)
    if size - offset < 2:
        return None
    length, start = data[offset + 1] & 0x7F, offset + 2
    if length == 126:
        if size - offset < 4:
            return None
        (length,) = struct.unpack_from("!H", data, start)
        start += 2
    elif length == 127:
        if size - offset < 10:
            return None
        (length,) = struct.unpack_from("!Q", data, start)
        start += 8
    if size - start < length:
        return None
    return data[offset] & 0x0F, start, start + length


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

    def __init__(
        self, host: str, path: str, token: str, on_rows, cookie: str = "", reader=None, tag=0
    ) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            + (f"Cookie: {cookie}\r\n" if cookie else "")
            + f"Sec-WebSocket-Protocol: bokeh, {token}\r\n\r\n"
        ).encode()
        self._on_rows = on_rows
        self._reader, self._tag = reader, tag
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
        while (frame := _next_frame(buffer, offset)) is not None:
            opcode, start, offset = frame
            self._frame(opcode, bytes(buffer[start:offset]), received)
            if self._reader is not None and self.ready.done():
                # From here on the reader's thread reads this socket, asyncio does not;
                # it gets the bytes read after this message too.
                self.transport.pause_reading()
                sock = self.transport.get_extra_info("socket")
                self._reader.adopt(sock.fileno(), bytes(buffer[offset:]), self._tag)
                buffer.clear()
                return
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
            if self._on_rows is None:
                # Streamed before the document was pulled (Bokeh sends a plain server
                # app's changes to a connection at once); a reader takes over after.
                return
            fast = _fast_rows(frames)
            if fast is not None:
                self.fast_reads += 1
                self._on_rows(np.array(fast[0]), np.array(fast[1]), received)
                return
            for seq, times in _streamed_rows(frames):
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


async def open_lean(
    url: str,
    on_rows=None,
    timeout: float = 300.0,
    cookie: str = "",
    reader: RowReader | None = None,
    tag: int = 0,
) -> LeanSession:
    """GET the page at ``url`` (a new session), connect to its websocket, pull and
    announce ``document_ready``; return the session once it is ready. ``cookie``: sent
    with both requests (a signed-in user's). With a ``reader``, the session's updates
    are read from then on by that `RowReader`, its rows marked ``tag``; else each goes
    to ``on_rows``."""
    headers = {"Cookie": cookie} if cookie else None
    response = await AsyncHTTPClient().fetch(url, request_timeout=timeout, headers=headers)
    match = _TOKEN.search(response.body.decode())
    if match is None:
        raise RuntimeError(f"no Bokeh session token in the page at {url}")
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/ws"
    loop = asyncio.get_running_loop()
    _, session = await loop.create_connection(
        lambda: LeanSession(parts.netloc, path, match.group(1), on_rows, cookie, reader, tag),
        parts.hostname,
        parts.port,
    )
    await asyncio.wait_for(session.ready, timeout)
    return session


class _Socket:
    __slots__ = ("buffer", "fd", "frames", "expected", "tag")

    def __init__(self, fd: int, buffer: bytes, tag) -> None:
        self.fd, self.buffer, self.tag = fd, buffer, tag
        self.frames: list[bytes] = []
        self.expected = 3


class RowReader:
    """Reads the updates of many ready sessions on one thread: an ``epoll`` wait for
    all of them and an ``os.read`` per update, no event loop in between (25 us of
    client CPU an update against the asyncio reader's 70 on this machine).

    `take` returns the rows read since the last: (seq, time ms, received s, tag), one
    for each tick an update carries. The sockets stay owned by their `LeanSession`
    (which wrote the handshake and closes them); `stop` before closing them.
    """

    def __init__(self, pause: float = 0.001) -> None:
        #: Seconds between one wait's reads and the next wait. A receive stamp is taken
        #: when its socket is read, so it is late by up to this (latency is overstated,
        #: never understated).
        self.pause = pause
        self.rows: list[tuple] = []
        #: Updates read without full parsing (the fan-out's JSON messages).
        self.fast_reads = 0
        self._sockets: dict[int, _Socket] = {}
        self._epoll = select.epoll()
        self._stopping = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="row-reader", daemon=True)
        self._thread.start()

    def adopt(self, fd: int, buffered: bytes, tag) -> None:
        """Read ``fd`` from now on; ``buffered``: bytes already read from it."""
        # Bytes already read are parsed with the next ones, on the reader's thread.
        self._sockets[fd] = _Socket(fd, buffered, tag)
        self._epoll.register(fd, select.EPOLLIN)

    def take(self) -> np.ndarray:
        """The rows read since the last take: (seq, time ms, received s, tag) each."""
        with self._lock:
            taken, self.rows = self.rows, []
        rows = [(seq, tick, received, tag)
                for tag, seqs, ticks, received in taken
                for seq, tick in zip(seqs, ticks, strict=True)]  # fmt: skip
        return np.array(rows, dtype=np.float64).reshape(-1, 4)

    def stop(self) -> None:
        self._stopping = True
        self._thread.join(timeout=10)
        self._epoll.close()

    def _run(self) -> None:
        sockets, pause = self._sockets, self.pause
        while not self._stopping:
            # Woken by one session's update, the next few are on their way: reading them
            # all after a pause costs one wakeup instead of one each.
            time.sleep(pause)
            for fd, _ in self._epoll.poll(0.2):
                sock = sockets.get(fd)
                if sock is None:
                    continue
                try:
                    data = os.read(fd, 1 << 18)
                except OSError as exc:
                    if exc.errno == errno.EAGAIN:
                        continue
                    data = b""
                if not data:  # closed
                    self._epoll.unregister(fd)
                    del sockets[fd]
                    continue
                self._parse(sock, data, time.time())

    def _parse(self, sock: _Socket, data: bytes, received: float) -> None:
        if sock.buffer:
            data, sock.buffer = sock.buffer + data, b""
        offset = 0
        while (frame := _next_frame(data, offset)) is not None:
            opcode, start, offset = frame
            if opcode == 0x1 or opcode == 0x2:
                frames = sock.frames
                frames.append(data[start:offset])
                if len(frames) == 1:
                    match = _NUM_BUFFERS.search(frames[0])
                    sock.expected = 3 + 2 * int(match.group(1)) if match else 3
                if len(frames) == sock.expected:
                    sock.frames = []
                    self._message(sock.tag, frames, received)
            elif opcode == 0x9:  # ping
                os.write(sock.fd, _client_frame(0xA, data[start:offset]))
        if offset < len(data):
            sock.buffer = data[offset:]

    def _message(self, tag, frames: list[bytes], received: float) -> None:
        if b"ColumnsStreamed" not in frames[2] or b'"PATCH-DOC"' not in frames[0]:
            return
        fast = _fast_rows(frames)
        if fast is not None:
            self.fast_reads += 1
            with self._lock:
                self.rows.append((tag, fast[0], fast[1], received))
            return
        for seq, times in _streamed_rows(frames):
            with self._lock:
                self.rows.append((tag, seq.tolist(), times.tolist(), received))


_C_SOURCE = Path(__file__).with_name("row_reader.c")


def build_c_reader() -> Path | None:
    """The compiled `CRowReader` library (built once per version of its source), or
    None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source = _C_SOURCE.read_bytes()
    library = Path(tempfile.gettempdir()) / (
        f"finflow-row-reader-{hashlib.sha256(source).hexdigest()[:16]}.so"
    )
    if not library.exists():
        partial = library.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(
            [compiler, "-O2", "-shared", "-fPIC", "-pthread", "-o", str(partial), str(_C_SOURCE)],
            check=True,
        )
        partial.replace(library)
    return library


class _Other(ctypes.Structure):
    """``other_t`` of ``row_reader.c`` (its frames follow it)."""

    _fields_ = [
        ("next", ctypes.c_void_p),
        ("received", ctypes.c_double),
        ("tag", ctypes.c_int),
        ("len", ctypes.c_size_t),
    ]


class CRowReader:
    """`RowReader` with its loop in C (``row_reader.c``): what a client spends per
    update is taken from the servers it measures when they share cores, and this
    spends a fraction of the Python reader's. Same interface; ``library`` from
    `build_c_reader`."""

    def __init__(self, library: Path, pause: float = 0.001) -> None:
        lib = self._lib = ctypes.CDLL(str(library))
        lib.rr_new.restype = ctypes.c_void_p
        lib.rr_new.argtypes = [ctypes.c_int]
        lib.rr_adopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                                 ctypes.c_size_t, ctypes.c_int]  # fmt: skip
        lib.rr_take.restype = lib.rr_pending.restype = ctypes.c_size_t
        lib.rr_take.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.rr_pending.argtypes = [ctypes.c_void_p]
        lib.rr_next_other.restype = ctypes.c_void_p
        lib.rr_next_other.argtypes = [ctypes.c_void_p]
        lib.rr_free.argtypes = [ctypes.c_void_p]
        lib.rr_fast_reads.restype = ctypes.c_long
        lib.rr_fast_reads.argtypes = [ctypes.c_void_p]
        lib.rr_stop.argtypes = [ctypes.c_void_p]
        self._fast_reads, self._left = 0, np.empty((0, 4))
        self._reader = lib.rr_new(int(pause * 1e6))
        if not self._reader:
            raise OSError("the C row reader did not start")

    @property
    def fast_reads(self) -> int:
        if self._reader:
            self._fast_reads = self._lib.rr_fast_reads(self._reader)
        return self._fast_reads

    def adopt(self, fd: int, buffered: bytes, tag) -> None:
        if self._lib.rr_adopt(self._reader, fd, buffered, len(buffered), int(tag)):
            raise OSError(f"the C row reader cannot read fd {fd}")

    def take(self) -> np.ndarray:
        """The rows read since the last take: (seq, time ms, received s, tag) each."""
        if not self._reader:  # stopped
            rows, self._left = self._left, np.empty((0, 4))
            return rows
        parts = [self._others()]
        n = self._lib.rr_pending(self._reader)
        rows = np.empty((n, 4))
        n = self._lib.rr_take(self._reader, rows.ctypes.data, n)
        parts.append(rows[:n])
        rows = np.concatenate(parts)
        # Rows decoded in Python and rows parsed in C, back in the order they arrived.
        return rows[np.argsort(rows[:, 2], kind="stable")]

    def _others(self) -> np.ndarray:
        """Rows of the messages the C loop kept whole (Bokeh's route, binary buffers)."""
        rows = []
        while pointer := self._lib.rr_next_other(self._reader):
            other = _Other.from_address(pointer)
            received, tag = other.received, other.tag
            data = ctypes.string_at(pointer + ctypes.sizeof(_Other), other.len)
            self._lib.rr_free(pointer)
            (count,) = struct.unpack_from("=Q", data)
            frames, offset = [], 8
            for _ in range(count):
                (length,) = struct.unpack_from("=Q", data, offset)
                frames.append(data[offset + 8 : offset + 8 + length])
                offset += 8 + length
            for seq, times in _streamed_rows(frames):
                rows += [(s, t, received, tag) for s, t in zip(seq, times, strict=True)]
        return np.array(rows, dtype=np.float64).reshape(-1, 4)

    def stop(self) -> None:
        """Stop reading; rows read until then are still taken by `take`."""
        if self._reader:
            self._fast_reads = self.fast_reads
            self._left = self.take()
            self._lib.rr_stop(self._reader)
            self._reader = None
