"""Domain model: portfolios, valuation and analytics (numpy/pandas, no panel/bokeh)."""

from __future__ import annotations

from . import risk
from .history import Calibration, PriceFileError, calibrate, load_prices
from .market import simulate
from .portfolio import (
    HOLDING_COLUMNS,
    VALUATION_COLUMNS,
    Holding,
    Portfolio,
    PortfolioError,
    portfolio_values,
)
from .universe import Universe

__all__ = [
    "HOLDING_COLUMNS",
    "Calibration",
    "VALUATION_COLUMNS",
    "Holding",
    "Portfolio",
    "PortfolioError",
    "PriceFileError",
    "Universe",
    "calibrate",
    "load_prices",
    "portfolio_values",
    "risk",
    "simulate",
]
