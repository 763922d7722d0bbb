"""What-if analysis: a portfolio's Monte Carlo future under scaled or overridden
assumptions, as percentile bands, final values, VaR and expected shortfall."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..sim import TRADING_DAY, RandomWalk, portfolio_value_paths
from .history import Calibration
from .portfolio import Portfolio

__all__ = ["BAND_PERCENTILES", "MAX_WORK", "WhatIf", "uniform_correlation", "what_if"]

#: Percentiles of portfolio value drawn as the fan chart's bands.
BAND_PERCENTILES = (5, 25, 50, 75, 95)
#: Steps at which the bands are worked out (evenly spread, the last step included): a
#: fan chart of 64 points looks the same as one of 1,260 and costs a fraction.
BAND_POINTS = 64
#: Random numbers (paths x steps x symbols) one run may draw: about a second here.
MAX_WORK = 60_000_000


def uniform_correlation(rho: float, n: int) -> np.ndarray:
    """An ``n x n`` correlation matrix with every pair at ``rho`` (ValueError unless it
    is a valid one: ``-1 / (n - 1) <= rho <= 1``)."""
    if isinstance(rho, bool) or not isinstance(rho, (int, float, np.floating)):
        raise ValueError(f"correlation must be a number, got {rho!r}")
    low = -1.0 / (n - 1) if n > 1 else -1.0
    if not (math.isfinite(rho) and low - 1e-12 <= rho <= 1.0):
        raise ValueError(
            f"a correlation of {rho:g} between all {n} symbols is impossible: it must lie "
            f"within [{low:.3g}, 1]"
        )
    matrix = np.full((n, n), float(rho))
    np.fill_diagonal(matrix, 1.0)
    return matrix


@dataclass(frozen=True)
class WhatIf:
    """One what-if run: bands of portfolio value over the horizon and the final values.

    ``bands`` is indexed by step (0 is today) with one column per percentile in
    `BAND_PERCENTILES` (``p5`` ... ``p95``); ``var`` and ``expected_shortfall`` are
    positive losses over the whole horizon at ``confidence``.
    """

    bands: pd.DataFrame
    final: np.ndarray
    start_value: float
    confidence: float
    var: float
    expected_shortfall: float
    horizon: int
    paths: int

    @property
    def var_percent(self) -> float:
        return self.var / self.start_value * 100.0

    @property
    def expected_shortfall_percent(self) -> float:
        return self.expected_shortfall / self.start_value * 100.0

    def summary(self) -> dict[str, float]:
        return {
            "start_value": self.start_value,
            "median_final": float(np.median(self.final)),
            "var": self.var,
            "var_percent": self.var_percent,
            "expected_shortfall": self.expected_shortfall,
            "expected_shortfall_percent": self.expected_shortfall_percent,
            "probability_of_loss": float((self.final < self.start_value).mean()),
        }


def _base(portfolio: Portfolio, calibration: Calibration | None):
    """Annual drift and volatility per holding and their correlation."""
    n = len(portfolio)
    if calibration is None:
        walk = portfolio.random_walk()
        return walk.drift, walk.volatility, walk.correlation
    missing = [s for s in portfolio.symbols if s not in calibration.drift.index]
    if missing:
        raise ValueError(f"the calibration has no estimate for {', '.join(missing)}")
    symbols = list(portfolio.symbols)
    correlation = calibration.correlation.loc[symbols, symbols].to_numpy()
    drift = calibration.drift[symbols].to_numpy()
    volatility = calibration.volatility[symbols].to_numpy()
    return drift, volatility, correlation if n > 1 else np.eye(1)


def what_if(
    portfolio: Portfolio,
    horizon: int = 252,
    paths: int = 10_000,
    drift_scale: float = 1.0,
    volatility_scale: float = 1.0,
    correlation: float | np.ndarray | None = None,
    confidence: float = 0.99,
    seed: int | None = None,
    calibration: Calibration | None = None,
    start_prices=None,
    dt: float = TRADING_DAY,
    threads: int = 2,
    max_work: int | None = MAX_WORK,
) -> WhatIf:
    """Simulate ``paths`` futures of ``portfolio`` over ``horizon`` steps of ``dt``
    years (trading days by default) and summarize them.

    Drift and volatility are the holdings' own (or ``calibration``'s, estimated from a
    price history), multiplied by ``drift_scale`` and ``volatility_scale``. Correlation
    is the calibration's (independent without one) unless overridden: a number sets
    every pair to it, a matrix replaces it. Prices start at ``start_prices`` (default
    the holdings' reference prices). All paths are drawn in one vectorized pass
    (`finflow_panel.sim.portfolio_value_paths`); the same seed gives the same result.
    A run drawing more than ``max_work`` random numbers (paths x steps x symbols) is
    refused (None: no limit), so a server's explorer cannot be asked for minutes of work.
    """
    for name, value, low, high in (("horizon", horizon, 1, 100_000), ("paths", paths, 2, None)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            raise ValueError(f"{name} must be at least {low}, got {value}")
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be within [0.5, 1), got {confidence}")
    work = paths * horizon * len(portfolio)
    if max_work is not None and work > max_work:
        raise ValueError(
            f"{paths:,} paths x {horizon:,} steps x {len(portfolio)} symbols is "
            f"{work / 1e6:,.0f} million draws; at most {max_work / 1e6:,.0f} million a run: "
            "fewer paths or a shorter horizon"
        )
    drift, volatility, base_correlation = _base(portfolio, calibration)
    if correlation is None:
        matrix = base_correlation
    elif np.ndim(correlation) == 0:
        matrix = uniform_correlation(correlation, len(portfolio))
    else:
        matrix = np.asarray(correlation, dtype=float)
    start = portfolio.reference_prices if start_prices is None else np.asarray(start_prices, float)
    walk = RandomWalk(
        portfolio.symbols,
        start_prices=start,
        drift=np.asarray(drift, float) * drift_scale,
        volatility=np.asarray(volatility, float) * volatility_scale,
        correlation=matrix,
        dt=dt,
    )
    steps = np.unique(np.linspace(1, horizon, min(horizon, BAND_POINTS)).round().astype(int))
    values = portfolio_value_paths(
        walk, portfolio.quantities, horizon, paths, at=steps, seed=seed, threads=threads
    )
    start_value = float(start @ portfolio.quantities)
    bands = np.percentile(values, BAND_PERCENTILES, axis=0).T
    table = pd.DataFrame(
        np.vstack([np.full(len(BAND_PERCENTILES), start_value), bands]),
        index=pd.Index(np.concatenate([[0], steps]), name="step"),
        columns=[f"p{p}" for p in BAND_PERCENTILES],
    )
    final = values[:, -1].astype(np.float64)
    losses = start_value - final
    var = float(np.quantile(losses, confidence))
    return WhatIf(
        bands=table,
        final=final,
        start_value=start_value,
        confidence=float(confidence),
        var=var,
        expected_shortfall=float(losses[losses >= var].mean()),
        horizon=int(horizon),
        paths=int(paths),
    )
