"""The benchmarks' lean protocol reader reads what the full client reads."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from benchmarks.lean_client import open_lean
from finflow_panel.client import SessionClient
from tests.util import run_async

pytestmark = pytest.mark.server


def test_lean_reader_sees_the_same_rows_as_the_full_client(server):
    url = server.url + "/portfolio"

    async def main():
        lean_rows = []
        lean = await open_lean(url, lambda seq, t, received: lean_rows.append((seq, t, received)))
        full = await SessionClient.open(url)
        await full.pull_doc()
        full_rows = [await full.next_rows(20) for _ in range(8)]
        deadline = time.monotonic() + 20
        last = full_rows[-1].seq[-1]
        while not lean_rows or lean_rows[-1][0][-1] < last:
            assert time.monotonic() < deadline, "the lean reader fell behind"
            await asyncio.sleep(0.05)
        lean.close()
        full.close()
        assert lean.fast_reads > 0  # the fan-out's messages were read without full parsing
        lean_seq = np.concatenate([seq for seq, _, _ in lean_rows])
        lean_time = np.concatenate([t for _, t, _ in lean_rows])
        seq = np.concatenate([rows.seq for rows in full_rows])
        times = np.concatenate([rows.time for rows in full_rows])
        shared, at_lean, at_full = np.intersect1d(lean_seq, seq, return_indices=True)
        assert len(shared) >= 6
        np.testing.assert_array_equal(lean_time[at_lean], times[at_full])
        # In order, no gaps: the lean reader loses no message either.
        np.testing.assert_array_equal(np.diff(lean_seq), 1)
        # Receive stamps are wall-clock seconds, after the tick they carry.
        stamps = np.array([received for _, _, received in lean_rows])
        assert (stamps * 1000 >= np.array([t[-1] for _, t, _ in lean_rows])).all()

    run_async(main())
