"""Panel/Bokeh views: one set of Bokeh models per session, fed by a SharedFeed."""

from __future__ import annotations

from .components import ConnectionStatus, Diagnostics, HoldingsTable, KpiCards
from .dashboard import LiveDashboard

__all__ = ["ConnectionStatus", "Diagnostics", "HoldingsTable", "KpiCards", "LiveDashboard"]
