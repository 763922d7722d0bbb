"""The analyst entry point: simulated prices as a pandas DataFrame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..sim import TRADING_DAY, RandomWalk
from ..sim.random_walk import PerSymbol, Seed

__all__ = ["simulate", "walk_frame"]


def simulate(
    symbols: Sequence[str] | str,
    steps: int,
    seed: Seed = None,
    start_prices: PerSymbol = None,
    drift: PerSymbol = None,
    volatility: PerSymbol = None,
    correlation: np.ndarray | Sequence | None = None,
    dt: float = TRADING_DAY,
    start: str | pd.Timestamp = "2026-01-02",
    freq: str = "B",
) -> pd.DataFrame:
    """Simulate ``steps`` prices per symbol with a correlated geometric random walk.

    Parameters
    ----------
    symbols : sequence of str or comma-separated str
        Column names, in order.
    steps : int
        Number of steps (rows), at least 1.
    seed : int or numpy.random.Generator, optional
        Same seed and parameters give bit-identical prices.
    start_prices, drift, volatility : float, sequence or {symbol: value}, optional
        Per-symbol parameters, see `finflow_panel.RandomWalk`.
    correlation : array_like, optional
        Correlation matrix of the shocks (symmetric, unit diagonal, PSD).
    dt : float
        Model time step in years (default one trading day).
    start, freq : optional
        Labels of the returned `DatetimeIndex`: the first step's time and the spacing
        (default business days from 2026-01-02).

    Returns
    -------
    pandas.DataFrame
        ``steps`` rows indexed by a `DatetimeIndex` named ``time``, one float column per
        symbol. Row 0 is the price after the first step from ``start_prices``.

    Examples
    --------
    >>> prices = simulate(["AAPL", "MSFT"], steps=252, seed=1)
    >>> prices.shape
    (252, 2)
    """
    walk = RandomWalk(
        symbols,
        start_prices=start_prices,
        drift=drift,
        volatility=volatility,
        correlation=correlation,
        dt=dt,
        seed=seed,
    )
    return walk_frame(walk, steps, start=start, freq=freq)


def walk_frame(
    walk: RandomWalk,
    steps: int,
    start: str | pd.Timestamp = "2026-01-02",
    freq: str = "B",
) -> pd.DataFrame:
    """Advance ``walk`` by ``steps`` and label the prices with a `DatetimeIndex`."""
    try:  # first: a range pandas cannot label fails before any simulating
        index = pd.date_range(start=start, periods=steps, freq=freq, name="time")
    except (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta):
        raise ValueError(
            f"steps: {steps:,} steps of {freq!r} from {start} run past the last date "
            f"pandas can represent; simulate fewer steps"
        ) from None
    values = walk.step(steps)
    return pd.DataFrame(values, index=index, columns=list(walk.symbols))
