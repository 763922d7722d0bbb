"""A minimal client of Bokeh's WebSocket protocol, for monitoring, tests and benchmarks.

It does what a browser does, without rendering: GET the page, read the session token,
open ``<app>/ws`` with subprotocols ``["bokeh", token]``, PULL-DOC, then read PATCH-DOC
messages and decode the ``time``/``seq`` columns streamed into the chart source.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

__all__ = ["Message", "PortfolioClient", "SessionClient", "StreamedRows", "portfolio_ws_url"]

_TOKEN = re.compile(r'"token"\s*:\s*"([^"]+)"')
_ids = itertools.count(1)


@dataclass
class Message:
    """One protocol message: header, metadata, content and binary buffers by id."""

    header: dict
    metadata: dict
    content: dict
    buffers: dict[str, bytes] = field(default_factory=dict)
    received: float = 0.0  # time.time() when the last frame arrived

    @property
    def msgtype(self) -> str:
        return self.header["msgtype"]


@dataclass
class StreamedRows:
    """Rows of one ColumnsStreamed event, decoded; ``columns`` maps name -> array."""

    columns: dict[str, np.ndarray]
    rollover: int | None

    @property
    def seq(self) -> np.ndarray:
        return self.columns["seq"]

    @property
    def time(self) -> np.ndarray:
        return self.columns["time"]


def _inline_bytes(text: str) -> bytes:
    """Bytes written inline in a document (not as a buffer): base64, gzipped by Bokeh."""
    raw = base64.b64decode(text)
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _decode(value: Any, buffers: dict[str, bytes]) -> Any:
    if isinstance(value, dict) and value.get("type") == "ndarray":
        array = value["array"]
        if isinstance(array, dict) and "id" in array:
            raw = buffers[array["id"]]
        elif isinstance(array, dict) and array.get("type") == "bytes":
            data = array["data"]
            raw = buffers[data["id"]] if isinstance(data, dict) else _inline_bytes(data)
        else:
            return np.asarray(array)
        order = "<" if value.get("order", "little") == "little" else ">"
        return np.frombuffer(raw, dtype=np.dtype(value["dtype"]).newbyteorder(order))
    if isinstance(value, dict) and value.get("type") == "map":
        return {k: _decode(v, buffers) for k, v in value.get("entries", [])}
    if isinstance(value, list):
        return np.asarray(value)
    return value


class SessionClient:
    """One protocol-level session of a Bokeh/Panel app.

    Use ``await SessionClient.open(url)``; then `pull_doc`, `next_patch`, `click` and
    `close`. Every wait takes a timeout.
    """

    def __init__(self, url: str, ws: WebSocketClientConnection, token: str) -> None:
        self.url = url
        self.ws = ws
        self.token = token
        self.doc: dict | None = None

    @classmethod
    async def open(cls, url: str, timeout: float = 30.0, token: str | None = None):
        """GET ``url``, read its token and open the session's websocket (ACK received).

        With ``token`` (a `SessionClient.token`), connect again to that session instead
        of opening a new one, as a browser whose connection dropped would.
        """
        if token is None:
            response = await AsyncHTTPClient().fetch(url, request_timeout=timeout)
            match = _TOKEN.search(response.body.decode())
            if match is None:
                raise RuntimeError(f"no Bokeh session token in the page at {url}")
            token = match.group(1)
        ws_url = re.sub(r"^http", "ws", url.split("?")[0].rstrip("/")) + "/ws"
        request = HTTPRequest(ws_url, request_timeout=timeout)
        ws = await websocket_connect(request, subprotocols=["bokeh", token])
        client = cls(url, ws, token)
        ack = await client.receive(timeout)
        if ack.msgtype != "ACK":
            raise RuntimeError(f"expected ACK, got {ack.msgtype}")
        return client

    async def _frame(self):
        frame = await self.ws.read_message()
        if frame is None:
            raise ConnectionError(f"websocket to {self.url} closed")
        return frame

    async def receive(self, timeout: float = 30.0) -> Message:
        """The next whole message (header, metadata, content and its buffers)."""
        # One timeout for the message, not one per frame: an update is some twenty
        # frames (a buffer is two), and a timer per frame was most of a client's work.
        return await asyncio.wait_for(self._receive(), timeout)

    async def _receive(self) -> Message:
        header = json.loads(await self._frame())
        metadata = json.loads(await self._frame())
        content = json.loads(await self._frame())
        buffers = {}
        for _ in range(header.get("num_buffers", 0)):
            ref = json.loads(await self._frame())
            buffers[ref["id"]] = await self._frame()
        return Message(header, metadata, content, buffers, time.time())

    async def send(self, msgtype: str, content: dict, timeout: float = 30.0) -> str:
        msgid = str(next(_ids))
        header = {"msgid": msgid, "msgtype": msgtype}
        for part in (header, {}, content):
            await asyncio.wait_for(self.ws.write_message(json.dumps(part)), timeout)
        return msgid

    async def pull_doc(self, timeout: float = 30.0, ready: bool = True) -> dict:
        """PULL-DOC: the whole document as JSON (PATCH-DOCs arriving first are dropped).

        With ``ready`` the client then announces ``document_ready`` as BokehJS does once
        it has rendered; Panel sends live updates to a session only after that.
        """
        msgid = await self.send("PULL-DOC-REQ", {}, timeout)
        deadline = time.monotonic() + timeout
        while True:
            message = await self.receive(max(0.1, deadline - time.monotonic()))
            if message.msgtype == "PULL-DOC-REPLY" and message.header.get("reqid") == msgid:
                self.doc = message.content["doc"]
                self._doc_buffers = message.buffers
                if ready:
                    await self._send_event("document_ready", {}, timeout)
                return self.doc

    async def _send_event(self, name: str, values: dict, timeout: float) -> None:
        entries = [[key, value] for key, value in values.items()]
        event = {
            "kind": "MessageSent",
            "msg_type": "bokeh_event",
            "msg_data": {
                "type": "event",
                "name": name,
                "values": {"type": "map", "entries": entries},
            },
        }
        await self.send("PATCH-DOC", {"events": [event]}, timeout)

    def find_model(self, predicate) -> dict:
        """The first model (a JSON dict) of the pulled document matching ``predicate``."""
        found = []

        def walk(node):
            if isinstance(node, dict):
                if "id" in node and "attributes" in node and predicate(node):
                    found.append(node)
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.doc)
        if not found:
            raise LookupError("no matching model in the document")
        return found[0]

    def chart_source(self) -> tuple[str, dict[str, np.ndarray]]:
        """Id and decoded columns of the ColumnDataSource holding ``time`` and ``seq``."""

        def is_chart(node):
            if node.get("name") != "ColumnDataSource":
                return False
            data = node["attributes"].get("data", {})
            keys = [k for k, _ in data.get("entries", [])] if "entries" in data else list(data)
            return "time" in keys and "seq" in keys

        model = self.find_model(is_chart)
        return model["id"], _decode(model["attributes"]["data"], self._doc_buffers)

    async def click(self, label: str, timeout: float = 30.0) -> None:
        """Click the button labelled ``label``, as BokehJS does."""
        button = self.find_model(
            lambda n: n.get("name", "").endswith("Button") and n["attributes"].get("label") == label
        )
        await self._send_event("button_click", {"model": {"id": button["id"]}}, timeout)

    async def set_property(self, model_id: str, attr: str, value: Any, timeout: float = 30.0):
        """Change a model's property from the browser side, as BokehJS does."""
        event = {"kind": "ModelChanged", "model": {"id": model_id}, "attr": attr, "new": value}
        await self.send("PATCH-DOC", {"events": [event]}, timeout)

    async def next_patch(self, timeout: float = 30.0) -> Message:
        """The next PATCH-DOC message."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.receive(max(0.1, deadline - time.monotonic()))
            if message.msgtype == "PATCH-DOC":
                return message

    @staticmethod
    def streamed(message: Message) -> list[StreamedRows]:
        """The ColumnsStreamed events of a PATCH-DOC, with their columns decoded."""
        rows = []
        for event in message.content.get("events", []):
            if event.get("kind") == "ColumnsStreamed":
                columns = _decode(event["data"], message.buffers)
                rows.append(StreamedRows(columns, event.get("rollover")))
        return rows

    async def next_rows(self, timeout: float = 30.0) -> StreamedRows:
        """Rows of the next PATCH-DOC that streams chart data."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next_patch(max(0.1, deadline - time.monotonic()))
            for rows in self.streamed(message):
                if "seq" in rows.columns:
                    return rows

    def close(self) -> None:
        self.ws.close()


def portfolio_ws_url(url: str) -> str:
    """The JSON API's websocket URL for a server URL (``http://host:port``, with or
    without a path, or the ``ws://`` URL itself)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not a server URL: {url!r} (use http://HOST:PORT)")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws/portfolio"):
        path = path.removesuffix("/portfolio") + "/ws/portfolio"
    return urlunsplit((scheme, parts.netloc, path + "/", parts.query, ""))


class PortfolioClient:
    """An async client of the JSON WebSocket API (``/ws/portfolio/``).

    >>> client = await PortfolioClient.connect("http://127.0.0.1:5006")
    >>> client.established["portfolio_name"]
    >>> data = await client.get_portfolio_data()
    >>> await client.start_updates(interval=1)
    >>> async for update in client.updates():
    ...     print(update["total_value"])

    ``cookie`` is a ``Cookie`` header value (the signed-in ``user`` cookie) for servers
    with sign-in; `sign_in` gets one with a name and password. Every wait has a timeout.
    """

    def __init__(self, ws: WebSocketClientConnection, established: dict) -> None:
        self.ws = ws
        #: The server's ``connection_established`` message.
        self.established = established

    @classmethod
    async def connect(
        cls, url: str, cookie: str | None = None, timeout: float = 30.0, origin: str | None = None
    ) -> PortfolioClient:
        headers = {}
        if cookie:
            headers["Cookie"] = cookie
        if origin:
            headers["Origin"] = origin
        request = HTTPRequest(portfolio_ws_url(url), headers=headers, request_timeout=timeout)
        ws = await asyncio.wait_for(websocket_connect(request), timeout)
        client = cls(ws, {})
        established = await client.receive(timeout)
        if established.get("type") != "connection_established":
            ws.close()
            raise ConnectionError(f"expected connection_established, got {established}")
        client.established = established
        return client

    @staticmethod
    async def sign_in(url: str, user: str, password: str, timeout: float = 30.0) -> str:
        """The ``Cookie`` header of a signed-in session (PermissionError if refused)."""
        from urllib.parse import urlencode, urlsplit, urlunsplit

        parts = urlsplit(url if "://" in url else f"http://{url}")
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        login = urlunsplit((scheme, parts.netloc, "/login", "", ""))
        response = await AsyncHTTPClient().fetch(
            login,
            method="POST",
            body=urlencode({"username": user, "password": password}),
            follow_redirects=False,
            raise_error=False,
            request_timeout=timeout,
        )
        cookies = [
            header.split(";")[0]
            for header in response.headers.get_list("Set-Cookie")
            if header.startswith("user=")
        ]
        if response.code != 302 or not cookies:
            raise PermissionError(f"sign-in as {user!r} at {login} was refused")
        return cookies[0]

    async def receive(self, timeout: float = 30.0) -> dict:
        """The next message from the server (ConnectionError once it has closed)."""
        frame = await asyncio.wait_for(self.ws.read_message(), timeout)
        if frame is None:
            code, reason = self.ws.close_code, self.ws.close_reason
            raise ConnectionError(f"the server closed the connection ({code}: {reason})")
        return json.loads(frame)

    async def send(self, message: dict) -> None:
        await self.ws.write_message(json.dumps(message))

    async def _reply(self, kinds: tuple[str, ...], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = await self.receive(max(0.1, deadline - time.monotonic()))
            if message.get("type") == "error":
                raise ValueError(message.get("message"))
            if message.get("type") in kinds:
                return message

    async def get_portfolio_data(
        self, portfolio_id: str | None = None, timeout: float = 30.0
    ) -> dict:
        """The followed (or the named) portfolio at the newest tick: ``data``."""
        message = {"type": "get_portfolio_data"}
        if portfolio_id is not None:
            message["portfolio_id"] = portfolio_id
        await self.send(message)
        return (await self._reply(("portfolio_data",), timeout))["data"]

    async def start_updates(self, interval: float | None = None, portfolio_id: str | None = None):
        message: dict[str, Any] = {"type": "start_updates"}
        if interval is not None:
            message["interval"] = interval
        if portfolio_id is not None:
            message["portfolio_id"] = portfolio_id
        await self.send(message)

    async def stop_updates(self) -> None:
        await self.send({"type": "stop_updates"})

    async def add_alert(
        self, target: str, condition: str, value: float, portfolio_id: str | None = None,
        timeout: float = 30.0,
    ) -> dict:  # fmt: skip
        """Add a price alert (ValueError naming the problem if refused): the alert."""
        message: dict[str, Any] = {
            "type": "add_alert", "target": target, "condition": condition, "value": value,
        }  # fmt: skip
        if portfolio_id is not None:
            message["portfolio_id"] = portfolio_id
        await self.send(message)
        return (await self._reply(("alert_added",), timeout))["alert"]

    async def remove_alert(self, alert_id: str, timeout: float = 30.0) -> None:
        await self.send({"type": "remove_alert", "alert_id": alert_id})
        await self._reply(("alert_removed",), timeout)

    async def get_alerts(self, timeout: float = 30.0) -> dict:
        """``{"alerts": [...], "log": [...]}``: the alerts set, and those that fired."""
        await self.send({"type": "get_alerts"})
        message = await self._reply(("alerts",), timeout)
        return {"alerts": message["alerts"], "log": message["log"]}

    async def fired(self, timeout: float = 60.0):
        """Each ``alert`` (one of the owner's alerts fired), as it arrives."""
        while True:
            yield await self._reply(("alert",), timeout)

    async def updates(self, timeout: float = 60.0):
        """Each ``price_update``'s data, as it arrives (ValueError on an ``error``)."""
        while True:
            yield (await self._reply(("price_update",), timeout))["data"]

    def close(self) -> None:
        """Start the closing handshake (`aclose` also waits for it to finish)."""
        self.ws.close()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Close and wait until the server has closed too, so the socket is released
        before the event loop ends."""
        self.ws.close()

        async def closed():
            while await self.ws.read_message() is not None:
                pass  # messages already on their way

        try:
            await asyncio.wait_for(closed(), timeout)
        except asyncio.TimeoutError:
            pass
