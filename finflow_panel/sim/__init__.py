"""Market simulation in pure numpy: the bottom layer of finflow_panel."""

from __future__ import annotations

from .paths import portfolio_value_paths, simulate_paths
from .random_walk import TRADING_DAY, RandomWalk, correlation_factor
from .replay import Replay

__all__ = [
    "TRADING_DAY",
    "RandomWalk",
    "Replay",
    "correlation_factor",
    "portfolio_value_paths",
    "simulate_paths",
]
