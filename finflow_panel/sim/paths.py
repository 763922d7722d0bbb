"""Many independent paths at once, for Monte Carlo risk: one draw, no loop per path."""

from __future__ import annotations

import numpy as np

from .random_walk import RandomWalk

__all__ = ["simulate_paths"]


def simulate_paths(walk: RandomWalk, steps: int, paths: int) -> np.ndarray:
    """Simulate ``paths`` futures of ``walk`` from its current prices, ``steps`` ahead.

    Uses the walk's drift, volatility, correlation, time step and random generator
    (so a seeded walk gives reproducible paths) without advancing its prices.

    Returns
    -------
    numpy.ndarray
        Float64 array of shape ``(paths, steps, symbols)``.
    """
    for name, value in (("steps", steps), ("paths", paths)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    k = len(walk.symbols)
    noise = walk._rng.standard_normal((paths * steps, k))
    if walk._factor is not None:
        noise = noise @ walk._factor
    noise *= walk._scale
    noise += walk._mean
    log_prices = noise.reshape(paths, steps, k)
    np.cumsum(log_prices, axis=1, out=log_prices)
    log_prices += np.log(walk.prices)
    np.clip(log_prices, -700.0, 700.0, out=log_prices)
    return np.exp(log_prices, out=log_prices)
