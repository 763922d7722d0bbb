"""Recorded prices played back one row per step: a market source like `RandomWalk`.

A market source is what a feed steps on each tick. It has ``symbols`` (its columns),
``prices`` (the newest price of each symbol), ``step(n)`` returning an ``(m, symbols)``
float block with ``m <= n`` (fewer only when the source runs out), and ``get_state`` /
``set_state`` (JSON-safe, so another process can continue it). Optionally it has
``remaining`` and ``ends_after`` (steps left and in all, None for an endless source)
and ``label(k)`` (the source's
own time of its ``k``-th step, shown beside the tick's wall-clock time).
`RandomWalk` and `Replay` are the two here; a live vendor feed is a third (see the
README, "Plugging in a real-time source").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["Replay"]


class Replay:
    """Plays ``prices`` back, one row per step, optionally looping.

    Parameters
    ----------
    symbols : sequence of str
        One name per column of ``prices``, unique.
    prices : array_like
        ``(rows, symbols)`` prices, finite and greater than 0, in playing order.
    labels : sequence of str, optional
        The source's own time of each row (e.g. its date in the file).
    loop : bool
        After the last row, start again at the first (steps keep counting) instead of
        ending.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        prices,
        labels: Sequence[str] | None = None,
        loop: bool = False,
    ) -> None:
        symbols = tuple(str(s) for s in symbols)
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError("symbols: one unique name per column is required")
        rows = np.array(prices, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(symbols) or len(rows) == 0:
            raise ValueError(
                f"prices must be a (rows, {len(symbols)}) array with at least one row, "
                f"got shape {rows.shape}"
            )
        if not (np.isfinite(rows).all() and (rows > 0).all()):
            raise ValueError("prices must be finite and greater than 0")
        if labels is not None:
            labels = tuple(str(label) for label in labels)
            if len(labels) != len(rows):
                raise ValueError(f"{len(labels)} labels for {len(rows)} rows")
        rows.flags.writeable = False
        self.symbols = symbols
        self.rows = rows
        self.labels = labels
        self.loop = bool(loop)
        self.steps_taken = 0

    def __repr__(self) -> str:
        return (
            f"Replay({len(self.symbols)} symbols, {len(self.rows)} rows, loop={self.loop}, "
            f"steps_taken={self.steps_taken})"
        )

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def prices(self) -> np.ndarray:
        """The newest row played (the first row before any step), a copy."""
        return self.rows[max(self.steps_taken - 1, 0) % len(self.rows)].copy()

    @property
    def ends_after(self) -> int | None:
        """Steps the source makes in all (None when looping: it never ends)."""
        return None if self.loop else len(self.rows)

    @property
    def remaining(self) -> int | None:
        """Steps left before the end (None when looping)."""
        return None if self.loop else max(len(self.rows) - self.steps_taken, 0)

    def step(self, n: int = 1) -> np.ndarray:
        """The next ``n`` rows (fewer at the end of a replay that does not loop);
        `EOFError` when none is left."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"steps must be a positive integer, got {n!r}")
        remaining = self.remaining
        if remaining is not None:
            if remaining == 0:
                raise EOFError(f"the replay's {len(self.rows)} rows have all been played")
            n = min(int(n), remaining)
        index = np.arange(self.steps_taken, self.steps_taken + n) % len(self.rows)
        self.steps_taken += int(n)
        return self.rows[index]  # fancy indexing: a fresh, writable copy

    def label(self, k: int) -> str | None:
        """The label of the ``k``-th step (counted from 0; laps wrap around), None past
        the end."""
        if self.labels is None or k < 0 or (not self.loop and k >= len(self.labels)):
            return None
        return self.labels[k % len(self.labels)]

    def fingerprint(self) -> str:
        """A short digest of what plays (symbols, rows, labels, looping): processes
        replaying the same file agree on it."""
        digest = hashlib.sha256(repr((self.symbols, self.labels, self.loop)).encode())
        digest.update(np.ascontiguousarray(self.rows).tobytes())
        return digest.hexdigest()[:16]

    def get_state(self) -> dict:
        return {"steps_taken": self.steps_taken}

    def set_state(self, state: dict) -> None:
        """Continue from `get_state`, or from ``{"ticks": k}`` (steps made so far)."""
        steps = state.get("ticks", state.get("steps_taken"))
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"replay state needs a step count, got {steps!r}")
        if not self.loop and steps > len(self.rows):
            raise ValueError(f"replay state is at step {steps} of {len(self.rows)} rows")
        self.steps_taken = steps
