"""Sign-in and the portfolio API on a real server, tried as its users and as outsiders."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from finflow_panel.store.credentials import add_user
from tests.util import HTTP, ServerProcess

SECRET = "x" * 40
USERS = {"ann": "ann-password", "bob": "bob-password"}
SNAPSHOT_KEYS = {"portfolio_id", "portfolio_name", "total_value", "total_change",
                 "total_change_percent", "investments", "seq", "timestamp"}  # fmt: skip
INVESTMENT_KEYS = {"symbol", "name", "current_price", "change", "change_percent", "quantity",
                   "value"}  # fmt: skip


def _start(tmp, store):
    return ServerProcess(
        "--tick", "0.2", "--basic-auth", str(tmp / "users.json"), "--cookie-secret", SECRET,
        "--store", store,
    ).start()  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    for user, password in USERS.items():
        add_user(tmp / "users.json", user, password)
    store = f"sqlite:///{tmp}/finflow.db"
    server = _start(tmp, store)
    yield server, tmp, store
    server.stop()


@pytest.fixture(scope="module")
def ann(site):
    client = HTTP(site[0].url)
    status, headers, _ = client.sign_in("ann", USERS["ann"])
    assert status == 302 and "user" in client.cookies
    return client


@pytest.fixture(scope="module")
def bob(site):
    client = HTTP(site[0].url)
    client.sign_in("bob", USERS["bob"])
    return client


def _body(name="Mine", holdings=(("AAPL", 10),)):
    return {"portfolio_name": name,
            "holdings": [{"symbol": s, "quantity": q} for s, q in holdings]}  # fmt: skip


def test_sign_in_keeps_panels_behaviour_and_loads_nothing_from_outside(site):
    server = site[0]
    client = HTTP(server.url)
    status, _, page = client.call("GET", "/login")
    assert status == 200 and 'name="username"' in page and 'name="password"' in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # works offline
    status, headers, _ = client.sign_in("ann", "wrong password")
    assert status == 302 and headers["Location"].endswith(
        "/login?error=Invalid+username+or+password%21"
    )
    assert "user" not in client.cookies
    # Over-long names and passwords are refused before any hashing.
    for user, password in (("ann", "x" * 5000), ("a" * 500, USERS["ann"])):
        status, headers, _ = client.sign_in(user, password)
        assert status == 302 and "error=" in headers["Location"] and "user" not in client.cookies
    status, headers, _ = client.sign_in("nobody", "whatever")
    assert status == 302 and "error=" in headers["Location"] and "user" not in client.cookies
    status, headers, _ = client.sign_in("ann", USERS["ann"])
    assert status == 302 and "user" in client.cookies
    status, _, _ = client.call("GET", "/portfolio")
    assert status == 200
    status, _, page = client.call("GET", "/logout")
    assert status == 200 and "user" not in client.cookies


def test_the_home_page_is_open_and_the_dashboard_needs_a_sign_in(site, ann):
    client = HTTP(site[0].url)
    assert client.call("GET", "/")[0] == 200
    for path in ("/portfolio", "/explore"):
        status, headers, _ = client.call("GET", path)
        assert status == 302 and "/login" in headers["Location"]
        assert ann.call("GET", path)[0] == 200


def test_without_a_sign_in_the_api_answers_401(site):
    client = HTTP(site[0].url)
    for method, path, body in [("GET", "/api/portfolios", None),
                               ("POST", "/api/portfolios", _body()),
                               ("GET", "/api/portfolios/abc", None),
                               ("PUT", "/api/portfolios/abc", _body()),
                               ("DELETE", "/api/portfolios/abc", None)]:  # fmt: skip
        status, _, data = client.call(method, path, body)
        assert (status, data) == (401, {"error": "sign in first"}), (method, path)
    # A cookie a client wrote itself is not a signed-in user.
    client.cookies["user"] = "ann"
    assert client.call("GET", "/api/portfolios")[0] == 401


def test_a_new_user_starts_with_the_sample_and_builds_their_own(ann):
    status, _, listed = ann.call("GET", "/api/portfolios")
    assert status == 200 and listed[0]["portfolio_name"] == "Sample portfolio"
    status, headers, made = ann.call("POST", "/api/portfolios",
                                     _body("Tech", [("NVDA", 5), ("META", 2.5)]))  # fmt: skip
    assert status == 201 and set(made) == SNAPSHOT_KEYS
    assert headers["Location"] == f"/api/portfolios/{made['portfolio_id']}"
    assert [i["symbol"] for i in made["investments"]] == ["NVDA", "META"]
    assert all(set(i) == INVESTMENT_KEYS for i in made["investments"])
    assert made["total_value"] == pytest.approx(sum(i["value"] for i in made["investments"]))
    pid = made["portfolio_id"]
    status, _, live = ann.call("GET", f"/api/portfolios/{pid}")
    assert status == 200 and live["portfolio_name"] == "Tech" and live["seq"] >= made["seq"]
    status, _, replaced = ann.call("PUT", f"/api/portfolios/{pid}", _body("Tech 2", [("AMD", 1)]))
    assert status == 200 and replaced["portfolio_name"] == "Tech 2"
    assert [i["symbol"] for i in replaced["investments"]] == ["AMD"]
    assert {"portfolio_id": pid, "portfolio_name": "Tech 2"} in ann.call("GET", "/api/portfolios")[
        2
    ]
    status, headers, body = ann.call("DELETE", f"/api/portfolios/{pid}")
    assert (status, body) == (204, "")
    assert ann.call("GET", f"/api/portfolios/{pid}")[0] == 404
    assert ann.call("DELETE", f"/api/portfolios/{pid}")[0] == 404


def test_another_users_portfolio_is_404_by_every_method_and_stays_unchanged(ann, bob):
    pid = ann.call("POST", "/api/portfolios", _body("Private", [("JPM", 7)]))[2]["portfolio_id"]
    guesses = [pid, pid.upper(), pid[:-1] + ("A" if pid[-1] != "A" else "B"), "sample", "1"]
    for guess in guesses:
        for method, body in (("GET", None), ("PUT", _body("Taken")), ("DELETE", None)):
            status, _, data = bob.call(method, f"/api/portfolios/{guess}", body)
            assert (status, data) == (404, {"error": "no such portfolio"}), (method, guess)
    assert pid not in str(bob.call("GET", "/api/portfolios")[2])
    status, _, kept = ann.call("GET", f"/api/portfolios/{pid}")
    assert status == 200 and kept["portfolio_name"] == "Private"
    assert [(i["symbol"], i["quantity"]) for i in kept["investments"]] == [("JPM", 7.0)]
    # Ids that are not ids at all never reach the store.
    for path in ("/api/portfolios/../feed", "/api/portfolios/a%2Fb", "/api/portfolios/" + "a" * 65):
        assert bob.call("GET", path)[0] == 404


@pytest.mark.parametrize(
    "body, headers, status, message",
    [
        ("{not json", {"Content-Type": "application/json"}, 400, "the body is not JSON"),
        (_body(holdings=[("ZZZZ", 1)]), None, 400, "unknown symbol 'ZZZZ'"),
        (_body(holdings=[("AAPL", 0)]), None, 400, "quantity of AAPL must be greater than 0"),
        (_body(holdings=[("AAPL", -1)]), None, 400, "quantity of AAPL must be greater than 0"),
        (_body(holdings=[("AAPL", "10")]), None, 400, "quantity of AAPL must be a number"),
        ("portfolio_name=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
         "application/json"),
        ('{"portfolio_name": "x"}', {"Content-Type": "text/plain"}, 415, "application/json"),
        (_body(), {"Origin": "http://evil.example"}, 403, "origin 'http://evil.example'"),
        ('{"portfolio_name": "' + "x" * 70_000 + '"}', {"Content-Type": "application/json"},
         413, "over 64 KiB"),
    ],
)  # fmt: skip
def test_bad_writes_name_the_problem_and_change_nothing(ann, body, headers, status, message):
    before = ann.call("GET", "/api/portfolios")[2]
    target = before[0]["portfolio_id"]
    for method, path in (("POST", "/api/portfolios"), ("PUT", f"/api/portfolios/{target}")):
        got, _, data = ann.call(method, path, body, headers)
        assert got == status and message in data["error"], (method, data)
    assert ann.call("GET", "/api/portfolios")[2] == before
    assert (
        ann.call("GET", f"/api/portfolios/{target}")[2]["portfolio_name"]
        == before[0]["portfolio_name"]
    )


def test_portfolios_outlive_a_restart(site, ann):
    server, tmp, store = site
    pid = ann.call("POST", "/api/portfolios", _body("Kept", [("KO", 3)]))[2]["portfolio_id"]
    server.stop()
    server.start()
    client = HTTP(server.url)
    client.sign_in("ann", USERS["ann"])
    status, _, kept = client.call("GET", f"/api/portfolios/{pid}")
    assert status == 200 and kept["portfolio_name"] == "Kept"
    ann.cookies.update(client.cookies)


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("plain", ["--cookie-secret", SECRET],
         "finflow-panel users add bob --basic-auth"),
        ("hashed", [], "sign-in needs --cookie-secret of at least 32 characters"),
        ("hashed", ["--cookie-secret", "short"], "at least 32 characters"),
        ("hashed", ["--cookie-secret", SECRET, "--store", "mysql://x/y"],
         "expected sqlite:///path.db or redis://"),
        ("none", ["--store", "sqlite:///x.db"], "need sign-in"),
    ],
)  # fmt: skip
def test_bad_sign_in_options_are_one_line_and_exit_code_2(tmp_path, setup, args, message):
    path = tmp_path / "users.json"
    if setup == "plain":
        path.write_text('{"bob": "hunter2"}')
    elif setup == "hashed":
        add_user(path, "ann", "pw")
    auth = ["--basic-auth", str(path)] if setup != "none" else []
    result = subprocess.run(
        [sys.executable, "-m", "finflow_panel.cli", "serve", *auth, *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PANEL_COOKIE_SECRET"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert message in line and "hunter2" not in line, line
