"""What a person sees in Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.util import ServerProcess, free_port, wait_ticks

pytestmark = pytest.mark.browser

SERVER_ARGS = ("--tick", "0.25", "--interval", "0.25", "--seed", "5")
TOTAL = '[data-kpi="total_value"]'
MONEY = re.compile(r"^\$[\d,]+\.\d\d$")


@pytest.fixture
def server():
    process = ServerProcess(*SERVER_ARGS).start()
    yield process
    process.stop()


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
    wait_ticks(server, 2)  # let an update already in flight land
    frozen = total.inner_text()
    wait_ticks(server, 8)
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


def test_on_a_phone_the_page_fits_stacks_and_works_by_touch(server, chromium_browser):
    context = chromium_browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
        has_touch=True,
    )  # fmt: skip
    page = context.new_page()
    try:
        page.goto(f"{server.url}/portfolio")
        total = page.locator(TOTAL)
        expect(total).to_have_text(MONEY)
        expect(page.get_by_text("Total value", exact=True)).to_be_visible()
        # No sideways scrolling: the document is no wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # The KPI cards stack: one above the other, each the width of the screen.
        cards = [box(page.locator(f'[data-kpi="{k}"]')) for k in ("total_value", "total_change")]
        assert cards[0]["x"] == cards[1]["x"] and cards[1]["y"] > cards[0]["y"]
        # The charts take the full width, one below the other.
        charts = [box(page.locator(".bk-Canvas").nth(i)) for i in range(2)]
        for chart in charts:
            assert chart["width"] >= 0.9 * 390 and chart["x"] + chart["width"] <= 390
            assert chart["height"] >= 250
        assert charts[1]["y"] >= charts[0]["y"] + charts[0]["height"]
        # The holdings table shows symbol, price, change and value, and folds the rest.
        table = page.locator("table.ff-holdings")
        table_box = box(table)
        assert table_box["x"] + table_box["width"] <= 390
        for name in ("Symbol", "Price", "Change", "Value"):
            expect(table.get_by_role("columnheader", name=name, exact=True)).to_be_visible()
        expect(table.get_by_role("columnheader", name="Name", exact=True)).to_be_hidden()
        # Start, Stop and the interval: on screen, big enough to touch, and working.
        stop = page.get_by_role("button", name="Stop", exact=True)
        start = page.get_by_role("button", name="Start", exact=True)
        interval = page.locator("input.bk-input")  # the one input: the update interval
        for control in (stop, start, interval):
            area = box(control)
            assert area["height"] >= 44 and area["x"] + area["width"] <= 390
        stop.tap()
        expect(start).to_be_enabled()
        wait_ticks(server, 2)  # an update already in flight lands
        frozen = total.inner_text()
        wait_ticks(server, 6)
        assert total.inner_text() == frozen
        start.tap()
        expect(total).not_to_have_text(frozen, timeout=15_000)
        interval.tap()
        interval.fill("1")
        interval.press("Enter")
        expect(interval).to_have_value("1")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()


def box(locator) -> dict:
    locator.wait_for()
    return locator.bounding_box()
