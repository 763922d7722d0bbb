"""The live clock: a shared, ticking market and its ring buffer of recent ticks."""

from __future__ import annotations

from .ring import TickBatch, TickRing
from .shared import SharedFeed, Subscriber

__all__ = ["SharedFeed", "Subscriber", "TickBatch", "TickRing"]
