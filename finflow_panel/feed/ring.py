"""A fixed-size ring buffer of ticks held as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TickBatch", "TickRing"]


@dataclass(frozen=True)
class TickBatch:
    """Consecutive ticks: ``seq`` and ``time`` (epoch ms) per row, ``prices`` per symbol.

    ``missed`` counts ticks the reader asked for that had already left the buffer.
    """

    symbols: tuple[str, ...]
    seq: np.ndarray
    time: np.ndarray
    prices: np.ndarray
    missed: int = 0

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def last_seq(self) -> int:
        return int(self.seq[-1]) if len(self.seq) else -1

    def tail(self, n: int) -> TickBatch:
        """The newest ``n`` rows of this batch (the batch itself if it has no more)."""
        if len(self) <= n:
            return self
        cut = len(self) - n
        return TickBatch(
            self.symbols, self.seq[cut:], self.time[cut:], self.prices[cut:], self.missed
        )


class TickRing:
    """The last ``capacity`` ticks; sequence numbers count up from ``start_seq`` (0)
    without gaps. They are Python ints and int64 arrays: they never wrap."""

    def __init__(self, symbols: tuple[str, ...], capacity: int, start_seq: int = 0) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
            raise TypeError(f"history must be an integer, not {type(capacity).__name__}")
        if capacity < 1:
            raise ValueError(f"history must be at least 1 tick, got {capacity}")
        self.symbols = symbols
        self.capacity = int(capacity)
        self._time = np.zeros(self.capacity)
        self._prices = np.zeros((self.capacity, len(symbols)))
        if start_seq < 0:
            raise ValueError(f"start_seq must be 0 or more, got {start_seq}")
        self._start = int(start_seq)
        self._count = self._start  # the next sequence number

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest tick, -1 before the first."""
        return self._count - 1

    @property
    def last_time(self) -> float:
        """Time (epoch ms) of the newest tick, nan before the first."""
        if self._count == self._start:
            return float("nan")
        return float(self._time[(self._count - 1) % self.capacity])

    @property
    def first_seq(self) -> int:
        """Sequence number of the oldest tick still held."""
        return max(self._start, self._count - self.capacity)

    def __len__(self) -> int:
        return min(self._count - self._start, self.capacity)

    def append(self, time_ms: np.ndarray, prices: np.ndarray) -> None:
        """Append ``len(time_ms)`` ticks; older ones fall off the far end."""
        n = len(time_ms)
        if n > self.capacity:
            time_ms, prices = time_ms[-self.capacity :], prices[-self.capacity :]
            self._count += n - self.capacity
            n = self.capacity
        start = self._count % self.capacity
        first = min(n, self.capacity - start)
        self._time[start : start + first] = time_ms[:first]
        self._prices[start : start + first] = prices[:first]
        if first < n:
            self._time[: n - first] = time_ms[first:]
            self._prices[: n - first] = prices[first:]
        self._count += n

    def restart_at(self, seq: int) -> None:
        """Hold nothing and number the next tick ``seq``: ticks before it that never
        arrived are not invented (readers asking for them see them as missed)."""
        if seq < self._count:
            raise ValueError(f"cannot restart at tick {seq}: tick {self._count - 1} is held")
        self._start = self._count = int(seq)

    def since(self, seq: int, limit: int | None = None) -> TickBatch:
        """Ticks with a sequence number greater than ``seq`` (at most the newest ``limit``)."""
        first = max(seq + 1, self.first_seq)
        if limit is not None:
            first = max(first, self._count - limit)
        missed = max(0, first - (seq + 1)) if limit is None else 0
        n = self._count - first
        if n <= 0:
            return TickBatch(self.symbols, np.empty(0, np.int64), np.empty(0), self._empty(), 0)
        positions = np.arange(first, self._count) % self.capacity
        return TickBatch(
            self.symbols,
            np.arange(first, self._count, dtype=np.int64),
            self._time[positions],
            self._prices[positions],
            missed,
        )

    def _empty(self) -> np.ndarray:
        return np.empty((0, len(self.symbols)))
