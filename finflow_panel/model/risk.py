"""Risk analytics over price and value tables: returns, volatility, drawdown, VaR.

Everything is whole-array numpy/pandas; Monte Carlo VaR draws all paths in one go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..sim import simulate_paths
from .portfolio import Portfolio

__all__ = [
    "VarBacktest",
    "annualized_volatility",
    "historical_var",
    "max_drawdown",
    "monte_carlo_var",
    "returns",
    "var_backtest",
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


@dataclass(frozen=True)
class VarBacktest:
    """A rolling VaR forecast set against what happened, and Kupiec's test of it.

    ``var`` holds each period's one-period VaR (a positive fraction) estimated from the
    ``window`` returns before it; ``exceptions`` the periods whose return lost more.
    Kupiec's proportion-of-failures likelihood ratio tests whether their count is
    consistent with ``1 - confidence``: a small ``kupiec_pvalue`` rejects the model.
    """

    var: pd.Series
    exceptions: pd.Series
    confidence: float
    observations: int
    exception_count: int
    expected_exceptions: float
    kupiec_statistic: float
    kupiec_pvalue: float


def kupiec_pof(exceptions: int, observations: int, confidence: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures test: the likelihood-ratio statistic (chi-squared
    with one degree of freedom under the model) and its p-value."""
    x, n, p = int(exceptions), int(observations), 1.0 - confidence
    if n <= 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= exceptions <= observations > 0, got {x} of {n}")

    def log_likelihood(rate: float) -> float:
        # x log(rate) + (n - x) log(1 - rate), with 0 log 0 = 0
        total = 0.0
        if x:
            total += x * math.log(rate)
        if n - x:
            total += (n - x) * math.log1p(-rate)
        return total

    statistic = max(0.0, -2.0 * (log_likelihood(p) - log_likelihood(x / n)))
    return statistic, math.erfc(math.sqrt(statistic / 2.0))


def var_backtest(
    period_returns: pd.Series,
    confidence: float = 0.99,
    window: int = 250,
    method: str = "historical",
) -> VarBacktest:
    """Backtest a rolling one-period VaR on ``period_returns`` (simple returns).

    Each period from the ``window``-th on gets a VaR from the ``window`` returns before
    it: their empirical ``1 - confidence`` quantile (``method="historical"``) or a normal
    one from their mean and standard deviation (``"normal"``); an exception is a return
    below minus that VaR. All windows are worked out in one array pass.
    """
    _check_confidence(confidence)
    if method not in ("historical", "normal"):
        raise ValueError(f"method must be 'historical' or 'normal', got {method!r}")
    series = pd.Series(period_returns, dtype=float).dropna()
    window = int(window)
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    if len(series) <= window:
        raise ValueError(
            f"{len(series)} returns leave nothing to test after a {window}-period window"
        )
    values = series.to_numpy()
    windows = np.lib.stride_tricks.sliding_window_view(values, window)[:-1]
    if method == "historical":
        var = -np.quantile(windows, 1.0 - confidence, axis=1)
    else:
        z = _normal_quantile(1.0 - confidence)
        var = -(windows.mean(axis=1) + z * windows.std(axis=1, ddof=1))
    tested = series.iloc[window:]
    var_series = pd.Series(var, index=tested.index, name="var")
    exceptions = tested < -var_series
    count = int(exceptions.sum())
    statistic, pvalue = kupiec_pof(count, len(tested), confidence)
    return VarBacktest(
        var=var_series,
        exceptions=tested[exceptions],
        confidence=confidence,
        observations=len(tested),
        exception_count=count,
        expected_exceptions=len(tested) * (1.0 - confidence),
        kupiec_statistic=statistic,
        kupiec_pvalue=pvalue,
    )


def _normal_quantile(q: float) -> float:
    """The standard normal's ``q`` quantile (Acklam's rational approximation, refined by
    one Newton step: accurate to about 1e-15)."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00)  # fmt: skip
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be within (0, 1), got {q}")
    low = 0.02425
    if q < low:
        t = math.sqrt(-2 * math.log(q))
        x = (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / (
            (((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1
        )
    elif q <= 1 - low:
        t = q - 0.5
        r = t * t
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * t
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
    else:
        t = math.sqrt(-2 * math.log(1 - q))
        x = -(((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / (
            (((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1
        )
    error = 0.5 * math.erfc(-x / math.sqrt(2)) - q
    return x - error * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
