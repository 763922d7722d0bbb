"""The fan-out's shared updates: the same message Bokeh would send, worked out once."""

from __future__ import annotations

import json
import struct
from types import SimpleNamespace

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.protocol import Protocol

from finflow_panel import LiveDashboard, Portfolio, SharedFeed
from finflow_panel.ui.fanout import BokehWire, FanOut, SharedUpdate


@pytest.fixture
def feed():
    feed = SharedFeed(Portfolio.sample().random_walk(seed=2), history=40, manual=True)
    feed.advance(30)
    return feed


def bokeh_stream(view, batch):
    """What Bokeh itself sends and keeps when ``view`` streams ``batch`` as JSON rows."""
    doc = Document()
    doc.add_root(view.source)
    events = []
    doc.callbacks.on_change(events.append)
    rows = {name: column.tolist() for name, column in view._stream_columns(batch).items()}
    view.source.stream(rows, rollover=view.rollover)
    message = Protocol().create("PATCH-DOC", events)
    return json.loads(message.content_json), dict(view.source.data)


def test_shared_update_is_the_message_bokeh_would_send(feed):
    view = LiveDashboard(feed=feed, rollover=32)
    before = dict(view.source.data)
    feed.advance(3)
    batch = feed.since(view._last_seq)
    update = SharedUpdate.build(batch, before, view._stream_columns(batch), view.rollover)
    expected_content, expected_data = bokeh_stream(view, batch)

    assert json.loads(update.content(view.source.id)) == expected_content
    assert set(update.columns) == set(expected_data)
    for name, column in update.columns.items():
        assert len(column) == 32  # rolled over like Bokeh's
        np.testing.assert_array_equal(column, expected_data[name])


def test_non_finite_rows_are_left_to_bokeh(feed):
    view = LiveDashboard(feed=feed)
    batch = feed.latest(1)
    columns = view._stream_columns(batch)
    columns["total_value"] = np.array([np.nan])
    assert SharedUpdate.build(batch, dict(view.source.data), columns, 100) is None


class FakeStream:
    def __init__(self):
        self.written = b""

    def write(self, data):
        self.written += data


class FakeWebSocket:
    def __init__(self):
        self.stream = FakeStream()

    def messages(self):
        """Decode the unmasked text frames written, three per Bokeh message."""
        data, frames = self.stream.written, []
        while data:
            assert data[0] == 0x81  # final text frame
            n, at = data[1], 2
            if n == 126:
                (n,), at = struct.unpack("!H", data[2:4]), 4
            elif n == 127:
                (n,), at = struct.unpack("!Q", data[2:10]), 10
            frames.append(json.loads(data[at : at + n]))
            data = data[at + n :]
        return [frames[i : i + 3] for i in range(0, len(frames), 3)]


class ServedDoc(Document):
    session_context = None

    def add_next_tick_callback(self, callback):
        raise AssertionError("a plain update should not take Bokeh's route")


def test_sessions_holding_the_same_rows_share_one_update(feed, monkeypatch):
    sockets = {}

    def sockets_for(doc):
        return [sockets.setdefault(id(doc), FakeWebSocket())]

    monkeypatch.setattr(BokehWire, "sockets", staticmethod(sockets_for))
    views = [LiveDashboard(feed=feed, interval=0.1) for _ in range(3)]
    feed.advance(5)
    late = LiveDashboard(feed=feed, interval=0.1)  # holds different (more) rows
    views.append(late)
    for view in views:
        view._doc, view._server, view._ready = ServedDoc(), True, True
        view._doc.session_context = SimpleNamespace(destroyed=False)
    fanout = FanOut(loop=None)
    feed.advance(2)
    for view in views:
        fanout._queue.append(view)
    fanout._run()

    assert fanout.routes == {"shared": 4}
    first, second, third, _ = views
    for name in first.source.data:
        # One copy of the new history, held by every source with the same rows.
        assert second.source.data[name] is first.source.data[name]
        assert third.source.data[name] is first.source.data[name]
    np.testing.assert_array_equal(first.source.data["seq"], np.arange(37))
    np.testing.assert_array_equal(late.source.data["seq"], np.arange(37))
    for view in views:
        [[header, metadata, content]] = sockets[id(view._doc)].messages()
        assert header["msgtype"] == "PATCH-DOC" and header["num_buffers"] == 0
        assert metadata == {}
        [event] = content["events"]
        assert event["kind"] == "ColumnsStreamed" and event["model"]["id"] == view.source.id
        entries = dict(event["data"]["entries"])
        expected_rows = 7 if view is not late else 2
        assert entries["seq"] == list(range(37 - expected_rows, 37))
        assert view.stats["messages_sent"] == 1 and view._last_seq == 36


def _client_edits(source_id):
    """Edits a client could send for the chart source: patch, stream and replace data."""
    ref = {"id": source_id}
    rows = {"type": "map", "entries": [["AAPL", [-666.0]], ["seq", [10**6]]]}
    return [
        {
            "kind": "ColumnsPatched",
            "model": ref,
            "attr": "data",
            "patches": {"type": "map", "entries": [["AAPL", [[0, -666.0], [1, -666.0]]]]},
        },
        {"kind": "ColumnsStreamed", "model": ref, "attr": "data", "data": rows, "rollover": 5},
        {"kind": "ModelChanged", "model": ref, "attr": "data", "new": rows},
        {"kind": "ColumnDataChanged", "model": ref, "attr": "data", "data": rows},
    ]


@pytest.mark.parametrize("edit", range(4), ids=["patch", "stream", "replace", "data_changed"])
def test_one_client_cannot_change_any_sessions_chart_data(feed, monkeypatch, edit):
    monkeypatch.setattr(BokehWire, "sockets", staticmethod(lambda doc: [FakeWebSocket()]))
    views = [LiveDashboard(feed=feed, interval=0.1) for _ in range(2)]
    docs = []
    for view in views:
        doc = ServedDoc()
        doc.add_root(view.source)
        doc.session_context = SimpleNamespace(destroyed=False)
        view._doc, view._server, view._ready = doc, True, True
        docs.append(doc)
    fanout = FanOut(loop=None)
    feed.advance(2)
    fanout._queue.extend(views)
    fanout._run()
    mine, other = views
    assert other.source.data["AAPL"] is mine.source.data["AAPL"]  # shared by the two
    assert not mine.source.data["AAPL"].flags.writeable
    before = {name: column.copy() for name, column in other.source.data.items()}

    client = object()  # what Bokeh passes as the setter of a change a client sent
    event = _client_edits(mine.source.id)[edit]
    docs[0].apply_json_patch({"events": [event]}, setter=client)

    for view in views:
        assert set(view.source.data) == set(before)
        for name, column in before.items():
            np.testing.assert_array_equal(view.source.data[name], column)
    # The server itself still streams into the source as usual.
    feed.advance(1)
    mine._flush()
    assert mine.source.data["seq"][-1] == feed.last_seq
