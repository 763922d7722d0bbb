"""Shared test helpers: waiting on conditions and requiring optional tools."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable

import pytest

REQUIRE_ALL = os.environ.get("FINFLOW_REQUIRE_ALL") == "1"


def require_executable(name: str) -> str:
    """Path of an optional tool; skip without it, but fail when FINFLOW_REQUIRE_ALL=1."""
    path = shutil.which(name)
    if path is None:
        message = f"{name!r} is not on PATH (apt-get install -y {name})"
        if REQUIRE_ALL:
            pytest.fail(f"{message}; FINFLOW_REQUIRE_ALL=1 forbids skipping")
        pytest.skip(message)
    return path


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


async def until(predicate: Callable[[], object], timeout: float = 15.0, what="condition"):
    """`wait_until` inside a coroutine: polls without blocking the event loop."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)


def wait_ticks(server, n: int, timeout: float = 30.0) -> int:
    """Wait until ``server``'s market has ticked ``n`` more times; its newest seq then."""
    start = server.feed()["last_seq"]
    wait_until(lambda: server.feed()["last_seq"] >= start + n, timeout=timeout)
    return server.feed()["last_seq"]


def free_port() -> int:
    """An unused TCP port on the loopback interface, chosen by the OS."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class ServerProcess:
    """``finflow-panel serve`` (or any command) in a subprocess on a free port."""

    def __init__(self, *args: str, port: int | None = None, env: dict | None = None, cmd=None):
        import sys

        self.port = port or free_port()
        self.args = args
        self.env = env
        self.cmd = cmd or [sys.executable, "-m", "finflow_panel.cli", "serve"]
        self.process = None
        #: What the server printed, once it has stopped.
        self.output = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def feed(self) -> dict:
        return get_json(f"{self.url}/api/feed")

    def start(self, timeout: float = 60.0, ready_path: str = "/api/feed") -> ServerProcess:
        import subprocess
        import urllib.error
        import urllib.request

        env = {**os.environ, **(self.env or {})}
        self.process = subprocess.Popen(
            [*self.cmd, "--port", str(self.port), *self.args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: --num-procs children too
        )

        def ready():
            if self.process.poll() is not None:
                with self.process.stdout:
                    raise AssertionError(f"server exited: {self.process.stdout.read()}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=2):
                    return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        wait_until(ready, timeout=timeout, interval=0.1)
        return self

    def _signal_group(self, sig) -> None:
        import os

        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        import signal

        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except Exception:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout and not self.process.stdout.closed:
            self.output = self.process.stdout.read()
            self.process.stdout.close()

    def kill(self) -> None:
        """Kill -9: the abrupt end a crash would be."""
        import signal

        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process.stdout.close()


def run_async(coroutine):
    """Run a coroutine to completion on a fresh event loop in its own thread.

    Playwright's sync API keeps an event loop running on the main thread, where
    ``asyncio.run`` refuses to start.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class RedisServer:
    """A real ``redis-server`` on a free loopback port, without persistence.

    ``stop`` and ``start`` again on the same port make an outage (and an empty Redis
    after it, as a restarted server without persistence is).
    """

    def __init__(self, executable: str, password: str | None = None) -> None:
        self.executable = executable
        self.password = password
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> RedisServer:
        import subprocess

        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, timeout=15)
        return self

    def _answers(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
                return reply.startswith(b"+PONG") or b"NOAUTH" in reply
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class HTTP:
    """Plain HTTP calls to a test server that keep cookies and never follow redirects:
    tests see each status, header and cookie as a browser would receive them."""

    def __init__(self, base_url: str) -> None:
        from urllib.parse import urlsplit

        self.host, self.port = urlsplit(base_url).hostname, urlsplit(base_url).port
        self.cookies: dict[str, str] = {}

    def call(self, method: str, path: str, body=None, headers: dict | None = None):
        """(status, headers, decoded JSON or text); ``body`` a dict goes as JSON."""
        import http.client
        import json

        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read().decode()
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                value = rest.split(";")[0]
                expired = "1970" in header or "max-age=0" in header.lower()
                if value not in ("", '""') and not expired:
                    self.cookies[name] = value
                else:
                    self.cookies.pop(name, None)
            kind = response.headers.get("Content-Type", "")
            if data and kind.startswith("application/json"):
                data = json.loads(data)
            return response.status, response.headers, data
        finally:
            connection.close()

    def sign_in(self, user: str, password: str):
        from urllib.parse import urlencode

        return self.call(
            "POST",
            "/login",
            body=urlencode({"username": user, "password": password}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
