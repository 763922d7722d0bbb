"""``finflow-panel serve --replay FILE``: a protocol-level client receives the file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finflow_panel.client import PortfolioClient, SessionClient
from tests.util import ServerProcess, run_async, wait_until

pytestmark = pytest.mark.server

ROWS = 12
SYMBOLS = ["ZED", "ABC", "MID"]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A long-form file, rows shuffled: the replay plays them in date order, with the
    symbols in their order of first appearance (not alphabetical)."""
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2023-03-01", periods=ROWS)
    prices = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (ROWS, 3)), axis=0)), 2)
    long = pd.DataFrame(
        [(d.strftime("%Y-%m-%d"), s, prices[i, j]) for i, d in enumerate(dates)
         for j, s in enumerate(SYMBOLS)],
        columns=["Date", "Symbol", "Close"],
    )  # fmt: skip
    # The first date's rows first (ZED, ABC, MID: their order of first appearance), the
    # other rows shuffled.
    long = pd.concat([long.iloc[:3], long.iloc[3:].sample(frac=1.0, random_state=3)])
    path = tmp_path_factory.mktemp("replay") / "history.csv"
    long.to_csv(path, index=False)
    return path, prices, [d.strftime("%Y-%m-%d") for d in dates]


def _plain(value):
    """A Bokeh-serialized dict ({"type": "map", "entries": [...]}) as a plain dict."""
    if isinstance(value, dict) and value.get("type") == "map":
        return {k: _plain(v) for k, v in value["entries"]}
    return value


def _serve(path, *extra):
    return ServerProcess(
        "--replay", str(path), *extra, "--tick", "0.1", "--interval", "0.1",
        "--session-lifetime", "0.5",
    ).start()  # fmt: skip


async def _collect(server, until_seq, timeout=30.0):
    """Every row the page's chart source holds or is streamed, up to ``until_seq``."""
    client = await SessionClient.open(server.url + "/portfolio")
    await client.pull_doc()
    _, columns = client.chart_source()
    first = int(columns["seq"][-1]) if len(columns["seq"]) else -1
    seqs = [columns["seq"]]
    prices = [np.column_stack([columns[s] for s in SYMBOLS]) if len(columns["seq"]) else
              np.empty((0, len(SYMBOLS)))]  # fmt: skip
    kpis = client.find_model(lambda node: "market_dates" in node["attributes"])
    while int(np.concatenate(seqs)[-1:].max(initial=-1)) < until_seq:
        rows = await client.next_rows(timeout)
        assert [c for c in rows.columns if c not in ("time", "seq")] == SYMBOLS
        seqs.append(rows.seq)
        prices.append(np.column_stack([rows.columns[s] for s in SYMBOLS]))
    client.close()
    table = kpis["attributes"]["market_dates"]
    return np.concatenate(seqs), np.vstack(prices), first, table


def test_a_replay_plays_the_file_in_order_then_says_it_has_finished(history):
    path, prices, dates = history
    server = _serve(path)
    try:
        state = server.feed()
        assert state["symbols"] == SYMBOLS and state["source"] == "replay"
        assert state["last_seq"] == -1  # nothing is played before anyone watches

        seqs, rows, first, table = run_async(_collect(server, ROWS - 1))
        np.testing.assert_array_equal(seqs, np.arange(ROWS))
        np.testing.assert_array_equal(rows, prices)  # every row, in the file's date order
        # The page's table of the file's dates, from its newest row on (to the end).
        start = max(first, 0)
        assert _plain(table) == {"seq": start, "dates": dates[start:]}
        wait_until(lambda: server.feed()["finished"], timeout=10)
        state = server.feed()
        assert state["last_seq"] == ROWS - 1 and state["market_date"] == dates[-1]
        assert not state["timer_running"]

        async def after_the_end():
            # A page opened after the end shows the whole file, and nothing more comes.
            client = await SessionClient.open(server.url + "/portfolio")
            doc = await client.pull_doc()
            _, columns = client.chart_source()
            status = client.find_model(lambda node: "feed_finished" in node["attributes"])
            with pytest.raises(TimeoutError):
                await client.next_rows(1.0)
            client.close()
            return doc, columns, status["attributes"]["feed_finished"]

        _, columns, finished = run_async(after_the_end())
        np.testing.assert_array_equal(columns["seq"], np.arange(ROWS))
        assert finished is True

        async def portfolio():
            client = await PortfolioClient.connect(server.url)
            data = await client.get_portfolio_data()
            await client.aclose()
            return client.established, data

        established, data = run_async(portfolio())
        # Without --portfolio: one unit of each replayed symbol.
        assert established["portfolio_name"] == "Replay of history.csv"
        assert established["symbols"] == SYMBOLS
        assert [h["symbol"] for h in data["investments"]] == SYMBOLS
        assert [h["quantity"] for h in data["investments"]] == [1.0, 1.0, 1.0]
        assert [h["current_price"] for h in data["investments"]] == prices[-1].tolist()
        assert data["total_value"] == pytest.approx(prices[-1].sum())
    finally:
        server.stop()


def test_a_looping_replay_starts_again_with_increasing_sequence_numbers(history):
    path, prices, dates = history
    server = _serve(path, "--replay-loop")
    try:
        seqs, rows, _, _ = run_async(_collect(server, 2 * ROWS + 3))
        np.testing.assert_array_equal(seqs, np.arange(len(seqs)))  # none repeated or skipped
        np.testing.assert_array_equal(rows, prices[seqs % ROWS])
        state = server.feed()
        assert not state["finished"] and state["last_seq"] >= 2 * ROWS + 3
        assert state["market_date"] == dates[state["last_seq"] % ROWS]
    finally:
        server.stop()


def test_a_bad_replay_file_stops_the_server_before_it_starts(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.csv"
    bad.write_text("date,AAA\n2024-01-02,10\nnot a date,11\n")
    for args, message in [
        ([str(bad)], "bad.csv, row 3: cannot read the date 'not a date'"),
        ([str(tmp_path / "missing.csv")], "missing.csv: no such file"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "finflow_panel.cli", "serve", "--replay", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
