"""``/explore`` on a real server: computed off the event loop, and a forged message
refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finflow_panel.client import SessionClient, _decode
from tests.util import ServerProcess, run_async, wait_until

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server():
    process = ServerProcess("--tick", "0.2", "--interval", "0.2", "--seed", "4").start()
    yield process
    process.stop()


def _bands_of(message) -> np.ndarray | None:
    """The fan chart's new median values in a PATCH-DOC, if it carries them."""
    for event in message.content.get("events", []):
        if event.get("kind") == "ColumnDataChanged":
            columns = _decode(event["data"], message.buffers)
            if "p50" in columns:
                return np.asarray(columns["p50"])
    return None


async def _next_bands(client, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while True:
        message = await client.next_patch(max(0.1, deadline - time.monotonic()))
        bands = _bands_of(message)
        if bands is not None:
            return bands, message


def _widget(client, label):
    return client.find_model(lambda node: node["attributes"].get("title") == label)


def test_the_explorer_computes_after_the_page_loads_and_on_each_change(server):
    async def main():
        client = await SessionClient.open(server.url + "/explore")
        await client.pull_doc()
        first, _ = await _next_bands(client)  # computed once the page is up
        paths = _widget(client, "Paths")
        await client.set_property(paths["id"], "value", "1000")
        second, message = await _next_bands(client)
        texts = json.dumps(message.content)
        client.close()
        return first, second, texts

    first, second, texts = run_async(main())
    assert len(first) == len(second) == 65 and not np.array_equal(first, second)
    assert "1,000 paths" in texts and "VaR 99%" in texts
    # The market kept its clock while the what-ifs ran (they run off the loop).
    wait_until(lambda: server.feed()["last_seq"] > 0, timeout=10)


def test_forged_settings_are_refused_and_set_back(server):
    async def main():
        client = await SessionClient.open(server.url + "/explore")
        await client.pull_doc()
        await _next_bands(client)
        horizon = _widget(client, "Horizon (trading days)")
        # What a browser sends when a slider is let go, with a value past its end.
        await client.set_property(horizon["id"], "value", 1_000_000)
        await client.set_property(horizon["id"], "value_throttled", 1_000_000)
        reply = await client.next_patch(10)
        client.close()
        return horizon["id"], reply

    horizon_id, reply = run_async(main())
    values = [
        event["new"]
        for event in reply.content["events"]
        if event.get("model", {}).get("id") == horizon_id and event.get("attr") == "value"
    ]
    assert values == [252]  # the slider is set back to the horizon in force
