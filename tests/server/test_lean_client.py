"""The benchmarks' lean protocol reader reads what the full client reads."""

from __future__ import annotations

import asyncio
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
