"""The benchmarks' lean protocol reader reads what the full client reads."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from benchmarks.lean_client import CRowReader, RowReader, build_c_reader, open_lean
from finflow_panel.client import SessionClient
from tests.util import require_executable, run_async

pytestmark = pytest.mark.server


@pytest.mark.parametrize("kind", ["python", "c"])
def test_lean_readers_see_the_same_rows_as_the_full_client(server, kind):
    url = server.url + "/portfolio"
    if kind == "c":
        require_executable("cc")

    async def main():
        lean_rows = []
        lean = await open_lean(url, lambda seq, t, received: lean_rows.append((seq, t, received)))
        reader = CRowReader(build_c_reader()) if kind == "c" else RowReader()
        threaded = await open_lean(url, reader=reader, tag=7)
        full = await SessionClient.open(url)
        await full.pull_doc()
        full_rows = [await full.next_rows(20) for _ in range(8)]
        deadline = time.monotonic() + 20
        last = full_rows[-1].seq[-1]
        while not lean_rows or lean_rows[-1][0][-1] < last:
            assert time.monotonic() < deadline, "the lean reader fell behind"
            await asyncio.sleep(0.05)
        taken = []
        while not taken or taken[-1][-1, 0] < last:
            assert time.monotonic() < deadline, f"the {kind} row reader fell behind"
            await asyncio.sleep(0.05)
            rows = reader.take()
            if len(rows):
                taken.append(rows)
        reader.stop()
        for session in (lean, threaded, full):
            session.close()
        # The fan-out's messages were read without full parsing, by both readers.
        assert lean.fast_reads > 0 and reader.fast_reads > 0
        by_thread = np.concatenate(taken)
        assert set(by_thread[:, 3]) == {7}
        by_lean = np.array([(s, t, received) for seq, times, received in lean_rows
                            for s, t in zip(seq, times, strict=True)])  # fmt: skip
        seq = np.concatenate([rows.seq for rows in full_rows])
        times = np.concatenate([rows.time for rows in full_rows])
        for name, read in [("lean", by_lean), (kind, by_thread)]:
            shared, at_read, at_full = np.intersect1d(read[:, 0], seq, return_indices=True)
            assert len(shared) >= 6, name
            np.testing.assert_array_equal(read[at_read, 1], times[at_full], err_msg=name)
            # In order, no gaps: no reader loses a message.
            np.testing.assert_array_equal(np.diff(read[:, 0]), 1, err_msg=name)
            # Receive stamps are wall-clock seconds, after the tick they carry.
            assert (read[:, 2] * 1000 >= read[:, 1]).all(), name

    run_async(main())


@pytest.mark.parametrize("kind", ["python", "c"])
def test_row_readers_decode_bokehs_binary_messages_and_answer_pings(kind):
    """Bokeh's own route sends many rows as binary buffers (a backfill, say): the
    readers' full-parsing path, fed a real Bokeh message over a socket pair."""
    import socket
    import struct

    from bokeh.document import Document
    from bokeh.document.events import ColumnsStreamedEvent
    from bokeh.models import ColumnDataSource
    from bokeh.protocol import Protocol

    from finflow_panel.ui.fanout import text_frame

    if kind == "c":
        require_executable("cc")
    doc = Document()
    source = ColumnDataSource(data={"time": [], "seq": []})
    doc.add_root(source)
    rows = {"time": 1.8e12 + np.arange(40) * 1000.0, "seq": np.arange(100, 140)}
    event = ColumnsStreamedEvent(doc, source, "data", rows, 2000, None)
    message = Protocol().create("PATCH-DOC", [event])
    assert message.header["num_buffers"] == 2  # binary, not the fan-out's JSON
    frames = [text_frame(message.header_json.encode()), text_frame(b"{}"),
              text_frame(message.content_json.encode())]  # fmt: skip
    for buffer in message.buffers:
        payload = buffer.to_bytes()
        binary = struct.pack("!BBH", 0x82, 126, len(payload)) + payload
        frames += [text_frame(json.dumps(buffer.ref).encode()), binary]
    ping = struct.pack("!BB", 0x89, 4) + b"ping"
    data = b"".join(frames) + ping

    ours, theirs = socket.socketpair()
    reader = CRowReader(build_c_reader()) if kind == "c" else RowReader()
    try:
        ours.setblocking(False)
        # Half a message arrives before the reader takes the socket over, as it may.
        reader.adopt(ours.fileno(), data[:100], tag=3)
        theirs.sendall(data[100:])
        theirs.settimeout(10)
        pong = theirs.recv(64)  # the reader answers the ping (a masked frame)
        assert pong[0] == 0x8A and pong[1] == 0x80 | 4
        mask, body = pong[2:6], pong[6:10]
        assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == b"ping"
        got = np.empty((0, 4))
        deadline = time.monotonic() + 10
        while len(got) < 40:
            assert time.monotonic() < deadline, f"read {len(got)} of 40 rows"
            got = np.concatenate([got, reader.take()])
            time.sleep(0.01)
        np.testing.assert_array_equal(got[:, 0], rows["seq"])
        np.testing.assert_array_equal(got[:, 1], rows["time"])
        assert set(got[:, 3]) == {3} and reader.fast_reads == 0
    finally:
        reader.stop()
        ours.close()
        theirs.close()
