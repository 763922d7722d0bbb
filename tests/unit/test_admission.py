"""Session admission: new sessions are built one per turn of the loop, timers between."""

from __future__ import annotations

import asyncio
import time

from finflow_panel.server import SessionAdmission
from tests.util import run_async


def _storm(admission: SessionAdmission | None, sessions: int = 5) -> list[str]:
    """What runs, in order, when ``sessions`` pages arrive in the same turn of the loop
    while a timer is due every turn; building a document blocks for 10 ms."""
    events: list[str] = []

    async def build(i):
        if admission is not None:
            await admission.on_session_created(None)
        events.append(f"build{i}")
        time.sleep(0.01)  # the uninterruptible work of building a document

    async def main():
        loop = asyncio.get_running_loop()

        def tick():
            events.append("tick")
            if running:
                loop.call_later(0.001, tick)

        running = True
        loop.call_later(0.001, tick)
        await asyncio.sleep(0.005)  # the timer is running
        await asyncio.gather(*[build(i) for i in range(sessions)])
        running = False

    run_async(main())  # in a thread: Playwright may hold this thread's loop
    return events


def _between_builds(events):
    builds = [i for i, event in enumerate(events) if event.startswith("build")]
    return [events[a + 1 : b].count("tick") for a, b in zip(builds, builds[1:], strict=False)]


def test_without_admission_a_storm_builds_every_session_before_any_timer_runs():
    assert _between_builds(_storm(None)) == [0, 0, 0, 0]


def test_with_admission_due_timers_run_between_any_two_builds():
    admission = SessionAdmission()
    events = _storm(admission)
    assert [e for e in events if e.startswith("build")] == [f"build{i}" for i in range(5)]
    assert all(ticks >= 1 for ticks in _between_builds(events)), events
    assert admission.waiting == 0
