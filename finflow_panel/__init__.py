"""finflow_panel: a simulated market streamed into a live Panel portfolio dashboard.

The simulator and portfolio model import only numpy and pandas; the dashboard classes
load Panel and Bokeh on first use, so analysts pay nothing for what they do not use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .model import Holding, Portfolio, PortfolioError, calibrate, load_prices, simulate
from .model.history import load_replay
from .model.whatif import what_if
from .sim import RandomWalk, Replay

__version__ = "0.1.0"

__all__ = [
    "Holding",
    "LiveDashboard",
    "Portfolio",
    "PortfolioError",
    "RandomWalk",
    "Replay",
    "SharedFeed",
    "TickBatch",
    "WhatIfExplorer",
    "__version__",
    "calibrate",
    "load_prices",
    "load_replay",
    "simulate",
    "what_if",
]

# Public names that live in the upper layers, imported lazily (PEP 562).
_LAZY = {
    "SharedFeed": ".feed",
    "TickBatch": ".feed",
    "LiveDashboard": ".ui",
    "WhatIfExplorer": ".ui.explore",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
