"""What a person sees in Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.util import ServerProcess, free_port, wait_until

pytestmark = pytest.mark.browser

SERVER_ARGS = ("--tick", "0.25", "--interval", "0.25", "--seed", "5")
TOTAL = '[data-kpi="total_value"]'
MONEY = re.compile(r"^\$[\d,]+\.\d\d$")


@pytest.fixture
def server():
    process = ServerProcess(*SERVER_ARGS).start()
    yield process
    process.stop()


def _wait_ticks(server, n):
    start = server.feed()["last_seq"]
    wait_until(lambda: server.feed()["last_seq"] >= start + n, timeout=30)


def test_live_value_offline_stop_and_start(server, page):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{server.url}/portfolio")
    total = page.locator(TOTAL)
    expect(total).to_have_text(MONEY)
    first = total.inner_text()
    expect(total).not_to_have_text(first, timeout=15_000)

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_enabled()
    _wait_ticks(server, 2)  # let an update already in flight land
    frozen = total.inner_text()
    _wait_ticks(server, 8)
    assert total.inner_text() == frozen

    page.get_by_role("button", name="Start", exact=True).click()
    expect(total).not_to_have_text(frozen, timeout=15_000)
    expect(page.locator(".ff-status")).to_have_text("\u25cf Connected")

    origin = server.url
    foreign = [u for u in requests if not u.startswith((origin, "data:", "blob:"))]
    assert foreign == []
    assert any("/static/" in u for u in requests)  # resources really came from the server


def test_redrawn_charts_send_no_range_updates_back(server, page):
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(frame)))
    page.goto(f"{server.url}/portfolio")
    total = page.locator(TOTAL)
    expect(total).to_have_text(MONEY)
    for _ in range(4):  # each new value is a redraw of both charts
        value = total.inner_text()
        expect(total).not_to_have_text(value, timeout=15_000)
    assert sent  # the page did talk to the server (document_ready at least)
    ranges = [f for f in sent if isinstance(f, str) and re.search(r'"attr":\s*"(start|end)"', f)]
    assert ranges == []


def test_page_recovers_by_itself_after_a_server_restart(page):
    port = free_port()
    server = ServerProcess(*SERVER_ARGS, port=port).start()
    try:
        page.goto(f"{server.url}/portfolio")
        total = page.locator(TOTAL)
        expect(total).to_have_text(MONEY)
        expect(total).not_to_have_text(total.inner_text(), timeout=15_000)

        server.kill()
        expect(page.locator(".ff-status")).to_have_text("\u25cf Reconnecting\u2026")
        server = ServerProcess(*SERVER_ARGS, port=port).start()

        expect(page.locator(".ff-status")).to_have_text("\u25cf Connected", timeout=30_000)
        expect(total).to_have_text(MONEY, timeout=30_000)
        expect(total).not_to_have_text(total.inner_text(), timeout=30_000)
    finally:
        server.stop()


def test_home_page_links_to_the_dashboard(server, page):
    page.goto(server.url + "/")
    page.get_by_role("link", name=re.compile("live portfolio dashboard")).click()
    expect(page).to_have_url(re.compile(r"/portfolio$"))
    expect(page.locator(TOTAL)).to_have_text(MONEY)
