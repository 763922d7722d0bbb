"""Risk analytics over price and value tables: returns, volatility, drawdown, VaR.

Everything is whole-array numpy/pandas; Monte Carlo VaR draws all paths in one go.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..sim import simulate_paths
from .portfolio import Portfolio

__all__ = [
    "annualized_volatility",
    "historical_var",
    "max_drawdown",
    "monte_carlo_var",
    "returns",
]

TRADING_DAYS = 252


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be within [0.5, 1), got {confidence}")


def returns(prices: pd.DataFrame | pd.Series, log: bool = False) -> pd.DataFrame | pd.Series:
    """Period returns (simple by default, or log returns); the first row is dropped."""
    if log:
        return np.log(prices).diff().iloc[1:]
    return prices.pct_change().iloc[1:]


def annualized_volatility(
    period_returns: pd.DataFrame | pd.Series, periods_per_year: int = TRADING_DAYS
) -> pd.Series | float:
    """Sample standard deviation of returns scaled by sqrt(periods per year)."""
    return period_returns.std(ddof=1) * np.sqrt(periods_per_year)


def max_drawdown(values: pd.DataFrame | pd.Series) -> pd.Series | float:
    """Largest peak-to-trough fall, as a negative fraction (-0.25 is a 25% drawdown)."""
    return (values / values.cummax() - 1.0).min()


def historical_var(
    period_returns: pd.Series | np.ndarray, confidence: float = 0.95, value: float = 1.0
) -> float:
    """Value-at-Risk from observed returns: the loss not exceeded with ``confidence``.

    Returned as a positive amount of ``value`` (a fraction of it when ``value`` is 1).
    """
    _check_confidence(confidence)
    observed = np.asarray(period_returns, dtype=np.float64)
    observed = observed[np.isfinite(observed)]
    if observed.size == 0:
        raise ValueError("historical_var needs at least one finite return")
    return float(-np.quantile(observed, 1.0 - confidence) * value)


def monte_carlo_var(
    portfolio: Portfolio,
    horizon: int = 1,
    paths: int = 10_000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = None,
    **walk_params,
) -> dict[str, float]:
    """Monte Carlo VaR and expected shortfall of ``portfolio`` over ``horizon`` steps.

    All ``paths`` are simulated at once from the holdings' reference prices; extra
    keyword arguments (``drift``, ``volatility``, ``correlation``, ``dt``) go to the
    random walk.

    Returns
    -------
    dict
        ``value`` (today), ``var`` and ``expected_shortfall`` (positive losses), and
        ``var_percent``.
    """
    _check_confidence(confidence)
    walk = portfolio.random_walk(seed=seed, **walk_params)
    final = simulate_paths(walk, horizon, paths)[:, -1, :]
    start = float(portfolio.reference_prices @ portfolio.quantities)
    losses = start - final @ portfolio.quantities
    var = float(np.quantile(losses, confidence))
    tail = losses[losses >= var]
    return {
        "value": start,
        "var": var,
        "var_percent": var / start * 100.0,
        "expected_shortfall": float(tail.mean()),
    }
