"""A page through a real nginx (deploy/nginx.conf) in front of two backends on one Redis."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.util import ServerProcess, free_port, require_executable, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.redis]

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
TOTAL = '[data-kpi="total_value"]'
MONEY = re.compile(r"^\$[\d,]+\.\d\d$")


def _config(tmp: Path, port: int, backends: list[int]) -> Path:
    """deploy/nginx.conf as shipped, on test ports, with its files in ``tmp``."""
    text = CONFIG.read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ .*;$", text, flags=re.M)
    assert len(servers) == len(backends)
    for line, backend in zip(servers, backends, strict=True):
        text = text.replace(line, re.sub(r":\d+ ", f":{backend} ", line), 1)
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    text = f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n" + text
    temp = "".join(
        f"    {kind}_temp_path {tmp}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", f"http {{\n    access_log off;\n{temp}", 1)
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


@pytest.fixture
def proxied(tmp_path, redis_server):
    nginx = require_executable("nginx")
    port = free_port()
    origin = f"127.0.0.1:{port}"
    backends = [
        ServerProcess("--redis", redis_server.url, "--tick", "0.5", "--interval", "0.5",
                      "--allow-websocket-origin", origin).start()
        for _ in range(2)
    ]  # fmt: skip
    config = _config(tmp_path, port, [b.port for b in backends])
    proxy = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def answers():
        assert proxy.poll() is None, proxy.stderr.read()
        try:
            import urllib.request

            with urllib.request.urlopen(f"http://{origin}/api/feed", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(answers, timeout=15)
        yield f"http://{origin}", backends
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        proxy.stderr.close()
        for backend in backends:
            backend.stop()


def test_a_page_through_the_proxy_is_live_and_survives_its_backend_dying(proxied, page):
    url, backends = proxied
    page.goto(f"{url}/portfolio")
    total = page.locator(TOTAL)
    expect(total).to_have_text(MONEY)
    expect(total).not_to_have_text(total.inner_text(), timeout=15_000)
    # Each backend's /api/feed shows its own sessions: the page is on exactly one.
    holding = wait_until(
        lambda: [b for b in backends if b.feed()["live_dashboards"] > 0], timeout=10
    )
    [serving] = holding
    [other] = [b for b in backends if b is not serving]

    serving.kill()  # SIGKILL
    # Without anyone reloading it, the page comes back live through the other backend.
    expect(page.locator(".ff-status")).to_have_text("\u25cf Connected", timeout=30_000)
    expect(total).to_have_text(MONEY, timeout=30_000)
    expect(total).not_to_have_text(total.inner_text(), timeout=30_000)
    wait_until(lambda: other.feed()["live_dashboards"] > 0, timeout=10)
