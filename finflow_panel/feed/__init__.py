"""The live clock: a shared, ticking market and its ring buffer of recent ticks."""

from __future__ import annotations

from .alerts import (
    CONDITIONS,
    PORTFOLIO,
    Alert,
    AlertBook,
    AlertError,
    AlertEvent,
    check_alert,
)
from .redis_feed import RedisFeed, RedisUnavailable
from .ring import TickBatch, TickRing
from .shared import MAX_HISTORY, SharedFeed, Subscriber

__all__ = [
    "CONDITIONS",
    "PORTFOLIO",
    "Alert",
    "AlertBook",
    "AlertError",
    "AlertEvent",
    "MAX_HISTORY",
    "RedisFeed",
    "RedisUnavailable",
    "SharedFeed",
    "Subscriber",
    "TickBatch",
    "TickRing",
    "check_alert",
]
