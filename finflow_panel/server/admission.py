"""Admit new sessions one at a time, so the market keeps its schedule in a join storm."""

from __future__ import annotations

import asyncio

from bokeh.application.handlers.handler import Handler

__all__ = ["SessionAdmission"]


class SessionAdmission(Handler):
    """A Bokeh application handler that builds new sessions one per turn of the loop.

    Building a session's document is a few hundred milliseconds of work that cannot be
    interrupted. When many pages are requested at once (a restart of a busy server, a
    morning rush) their requests become ready in the same turn of the event loop, and
    asyncio runs every ready callback of a turn before it looks at its timers again: the
    market's clock and the fan-out waited for all of them (seconds), and ticks were lost.

    Bokeh awaits ``on_session_created`` just before it builds the document, in the same
    step; here each new session waits for the one before it to be built, then yields once
    more, so due timers and socket writes run between any two builds.
    """

    def __init__(self) -> None:
        super().__init__()
        self._previous: asyncio.Future | None = None
        #: Sessions waiting for their turn now (for monitoring).
        self.waiting = 0

    def modify_document(self, doc) -> None:
        """Nothing to add: the app's own handler builds the document."""

    async def on_session_created(self, session_context) -> None:
        loop = asyncio.get_running_loop()
        previous, mine = self._previous, loop.create_future()
        self._previous = mine
        self.waiting += 1
        try:
            if previous is not None:
                await previous
            await asyncio.sleep(0)  # timers and I/O that became due run first
        finally:
            self.waiting -= 1
            # The document is built right after this returns, in this same step; the
            # next session starts in a later turn, once it is done.
            loop.call_soon(_done, mine)


def _done(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
