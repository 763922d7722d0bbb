"""Signed-in users and their own portfolios, in Chromium: the login form, the editor,
live changes across tabs, a server restart, and a second user who never sees them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from finflow_panel.store.credentials import add_user
from tests.util import ServerProcess

pytestmark = pytest.mark.browser

USERS = {"ann": "ann-password", "bob": "bob-password"}
TOTAL = '[data-kpi="total_value"]'
MONEY = re.compile(r"^\$[\d,]+\.\d\d$")
# The value line's newest point as BokehJS computes it, and the newest AMD price.
VALUE_LINE = """() => {
  const doc = Bokeh.documents[0]
  const line = doc.get_model_by_name("total_value")
  const source = line.data_source
  const spec = line.glyph.y ?? line.glyph.properties.y.get_value()
  const values = spec.expr.v_compute(source)
  const n = source.get_length()
  return [values[n - 1], source.data["AMD"][n - 1]]
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("portfolios")
    for user, password in USERS.items():
        add_user(tmp / "users.json", user, password)
    server = ServerProcess(
        "--tick", "0.25", "--interval", "0.25", "--basic-auth", str(tmp / "users.json"),
        "--cookie-secret", "y" * 40, "--store", f"sqlite:///{tmp}/finflow.db",
    ).start()  # fmt: skip
    yield server
    server.stop()


@pytest.fixture
def context(chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1100})
    yield context
    context.close()


def _sign_in(page, server, user, path="/portfolio"):
    page.goto(f"{server.url}{path}")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', USERS[user])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(TOTAL)).to_have_text(MONEY, timeout=20_000)


def _editor(page):
    card = page.locator(".card").filter(has_text="Edit portfolio")
    header = card.locator(".card-header")
    if card.locator("input").count() == 0 or not card.locator("input").first.is_visible():
        header.click()
    return card


def _field(card, label):
    return card.locator(".bk-input-group").filter(has_text=label).locator("input")


def _edit(page, symbol=None, quantity=None, cost=None, button="Add or update holding"):
    card = _editor(page)
    for label, value in (("Symbol", symbol), ("Quantity", quantity), ("Cost per share", cost)):
        if value is not None:
            field = _field(card, label)
            field.fill(value)
            field.press("Tab")
    card.get_by_role("button", name=button).click()
    return card.locator(".ff-editor-message")


def _rows(page):
    return page.locator(".ff-holdings tbody tr")


def test_a_user_builds_a_portfolio_in_the_editor_and_every_tab_follows(site, context):
    errors = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    _sign_in(page, site, "ann")
    selector = page.locator("select").first
    expect(selector.locator("option")).to_have_count(1)
    expect(selector.locator("option").first).to_contain_text("Sample portfolio")
    other = context.new_page()  # a second tab, same signed-in user
    other.goto(f"{site.url}/portfolio")
    expect(other.locator(TOTAL)).to_have_text(MONEY)

    message = _edit(page, symbol="META", quantity="5", cost="100")
    expect(message).to_contain_text("Added META: 5")
    expect(_rows(page).filter(has_text="META")).to_have_count(1)
    pnl = _rows(page).filter(has_text="META").locator('[data-col="pnl"]')
    expect(pnl).to_have_text(re.compile(r"^[+\u2212][\d,]+\.\d\d$"))
    # The other tab shows the change live, without a reload.
    expect(_rows(other).filter(has_text="META")).to_have_count(1, timeout=15_000)

    card = _editor(page)
    _field(card, "Name").fill("Tech")
    message = _edit(page, symbol="AMD", quantity="3", button="New portfolio")
    expect(message).to_contain_text("Created Tech")
    expect(page.locator("select").first).to_contain_text("Tech")
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text("AMD")
    expect(other.locator("select").first).to_contain_text("Tech", timeout=15_000)

    # The value chart is valued in the browser from the streamed prices: its newest
    # point is the KPI's total for the holdings shown (3 AMD).
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_enabled()
    chart, amd = page.evaluate(VALUE_LINE)
    total = float(page.locator(TOTAL).inner_text().lstrip("$").replace(",", ""))
    assert chart == pytest.approx(3 * amd) and total == pytest.approx(chart, abs=0.005)
    assert errors == []


def test_change_remove_rename_and_delete(site, context):
    page = context.new_page()
    _sign_in(page, site, "ann")
    card = _editor(page)
    _field(card, "Name").fill("Scratch")
    expect(_edit(page, symbol="PEP", quantity="4", button="New portfolio")).to_contain_text(
        "Created Scratch"
    )
    expect(_edit(page, symbol="KO", quantity="2")).to_contain_text("Added KO: 2")
    expect(_edit(page, symbol="KO", quantity="2.5")).to_contain_text("Updated KO: 2.5")
    quantity = _rows(page).filter(has_text="KO").locator('[data-col="quantity"]')
    expect(quantity).to_have_text("2.50")
    expect(_edit(page, symbol="PEP", button="Remove holding")).to_contain_text("Removed PEP")
    expect(_rows(page)).to_have_count(1)
    expect(_edit(page, symbol="KO", button="Remove holding")).to_contain_text(
        "needs at least one holding"
    )
    _field(card, "Name").fill("Scratch renamed")
    card.get_by_role("button", name="Rename").click()
    expect(card.locator(".ff-editor-message")).to_contain_text("Renamed to Scratch renamed")
    expect(page.locator(".ff-book")).to_have_text("Scratch renamed")
    card.get_by_role("button", name="Delete portfolio").click()
    expect(card.locator(".ff-editor-message")).to_contain_text("Deleted Scratch renamed")
    expect(page.locator("select").first).not_to_contain_text("Scratch")


@pytest.mark.parametrize(
    "symbol, quantity, message",
    [
        ("AAPL", "0", "Quantity: must be greater than 0"),
        ("AAPL", "-1", "Quantity: must be greater than 0"),
        ("AAPL", "ten", "Quantity: 'ten' is not a number"),
        ("ZZZZ", "1", "Symbol: unknown symbol 'ZZZZ'"),
    ],
)
def test_bad_values_show_a_message_and_save_nothing(site, context, symbol, quantity, message):
    page = context.new_page()
    _sign_in(page, site, "ann")
    before = _rows(page).all_inner_texts()
    shown = _edit(page, symbol=symbol, quantity=quantity)
    expect(shown).to_contain_text(message)
    assert [r.split("\t")[0] for r in _rows(page).all_inner_texts()] == [
        r.split("\t")[0] for r in before
    ]


def test_portfolios_outlive_a_restart_and_another_user_never_sees_them(site, chromium_browser):
    ann = chromium_browser.new_context()
    page = ann.new_page()
    _sign_in(page, site, "ann")
    _field(_editor(page), "Name").fill("Restart proof")
    expect(_edit(page, symbol="KO", quantity="7", button="New portfolio")).to_contain_text(
        "Created Restart proof"
    )
    # Her portfolios' real ids, as the API (same sign-in cookie) lists them.
    listed = page.request.get(f"{site.url}/api/portfolios").json()
    ids = {p["portfolio_name"]: p["portfolio_id"] for p in listed}
    assert "Restart proof" in ids
    ann.close()
    site.stop()
    site.start()

    again = chromium_browser.new_context()
    page = again.new_page()
    _sign_in(page, site, "ann")
    expect(page.locator("select").first).to_contain_text("Restart proof")
    # Her URL opens that portfolio, still there after the restart.
    page.goto(f"{site.url}/portfolio?portfolio={ids['Restart proof']}")
    expect(page.locator(".ff-book")).to_have_text("Restart proof")
    expect(_rows(page).filter(has_text="KO")).to_have_count(1)
    again.close()

    bob = chromium_browser.new_context()
    page = bob.new_page()
    _sign_in(page, site, "bob")
    expect(page.locator("select").first.locator("option")).to_have_count(1)
    expect(page.locator("select").first).not_to_contain_text("Restart proof")
    expect(page.locator("select").first).not_to_contain_text("Tech")
    # Guessing the URL of ann's portfolios shows bob his own.
    for portfolio_id in ids.values():
        page.goto(f"{site.url}/portfolio?portfolio={portfolio_id}")
        expect(page.locator(TOTAL)).to_have_text(MONEY)
        expect(page.locator("select").first).not_to_contain_text("Restart proof")
        expect(_rows(page).filter(has_text="KO")).to_have_count(0)
    bob.close()


def test_a_users_alerts_and_their_log_outlive_the_tab_and_a_restart(site, chromium_browser):
    ann = chromium_browser.new_context(viewport={"width": 1400, "height": 1100})
    page = ann.new_page()
    _sign_in(page, site, "ann")
    page.get_by_role("button", name="Alerts").click()
    page.get_by_label("Target").select_option("MSFT")
    page.get_by_label("Value").fill("1")
    page.get_by_label("Value").press("Enter")
    page.get_by_role("button", name="Add alert").click()
    expect(page.locator(".ff-alert-message")).to_have_text("Added: MSFT above 1.00")
    expect(page.locator(".notyf__toast")).to_contain_text("MSFT above 1.00: now ")
    ann.close()  # the tab closes: her alert stays, checked by the server
    site.stop()
    site.start()

    again = chromium_browser.new_context(viewport={"width": 1400, "height": 1100})
    page = again.new_page()
    _sign_in(page, site, "ann")
    page.get_by_role("button", name="Alerts").click()
    card = page.locator(".card", has_text="Active alerts")
    expect(card.locator(".ff-alert-label")).to_have_text(["MSFT above 1.00"])
    # the log she sees holds the firing from before the restart, from the store
    expect(card.locator(".ff-alert-log li").first).to_contain_text("MSFT above 1.00: now ")
    card.get_by_role("button", name="Remove").click()
    expect(card.get_by_text("No alerts yet.")).to_be_visible()
    again.close()

    bob = chromium_browser.new_context()
    page = bob.new_page()
    _sign_in(page, site, "bob")
    page.get_by_role("button", name="Alerts").click()
    card = page.locator(".card", has_text="Active alerts")
    expect(card.get_by_text("No alerts yet.")).to_be_visible()
    expect(card.get_by_text("Nothing has fired yet.")).to_be_visible()
    bob.close()
