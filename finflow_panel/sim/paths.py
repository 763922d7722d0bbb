"""Many independent paths at once, for Monte Carlo risk: one draw, no loop per path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .random_walk import RandomWalk

__all__ = ["portfolio_value_paths", "simulate_paths"]

#: Random numbers drawn per block of paths: a few MB, which stay in cache while the
#: block is mixed, accumulated and valued (one 60 MB draw spends longer faulting in
#: fresh memory than drawing).
_BLOCK_VALUES = 1 << 20
#: Rows mixed per matrix product: small enough that OpenBLAS runs each in the calling
#: thread. Larger ones start its own threads, which fight the workers here for the same
#: cores (measured: 2 workers then ran barely faster than 1).
_MIX_ROWS = 8192
#: float32 exp overflows past ~88.7; prices are clipped at e**80 (5.5e34) as the walk
#: clips at e**700.
_LOG_MAX32 = 80.0


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


def _whole(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


def portfolio_value_paths(
    walk: RandomWalk,
    quantities,
    steps: int,
    paths: int,
    at=None,
    seed: int | None = None,
    threads: int = 2,
) -> np.ndarray:
    """The value of a portfolio (``quantities`` of ``walk``'s symbols) along ``paths``
    simulated futures, at the steps ``at`` (1-based; default every step 1..steps).

    Built for speed, for interactive what-ifs: single precision, blocks of paths that
    fit in cache, each drawn from its own generator (spawned from ``seed``, so results
    depend on the seed alone, not on ``threads``), and blocks shared between ``threads``
    workers (numpy releases the GIL in all of it). Only the asked-for steps are valued.
    Uses the walk's drift, volatility, correlation, time step and current prices; its
    own generator and prices are left untouched.

    Returns
    -------
    numpy.ndarray
        Float32 array of shape ``(paths, len(at))``.
    """
    steps, paths, threads = (
        _whole("steps", steps),
        _whole("paths", paths),
        _whole("threads", threads),
    )
    k = len(walk.symbols)
    quantities = np.asarray(quantities, dtype=np.float32)
    if quantities.shape != (k,):
        raise ValueError(f"quantities: expected {k} values, got shape {quantities.shape}")
    at = np.arange(1, steps + 1) if at is None else np.asarray(at, dtype=np.int64)
    if at.ndim != 1 or len(at) == 0 or at.min() < 1 or at.max() > steps:
        raise ValueError(f"at: steps to value must lie within 1..{steps}")
    keep = at - 1
    factor = None if walk._factor is None else walk._factor.astype(np.float32)
    mean = walk._mean.astype(np.float32)
    scale = walk._scale.astype(np.float32)
    start = np.log(walk.prices).astype(np.float32)
    block = max(1, min(paths, _BLOCK_VALUES // (steps * k)))
    starts = range(0, paths, block)
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    out = np.empty((paths, len(at)), dtype=np.float32)

    def run(i: int) -> None:
        first = starts[i]
        n = min(block, paths - first)
        rng = np.random.Generator(np.random.SFC64(seeds[i]))
        z = rng.standard_normal((n * steps, k), dtype=np.float32)
        if factor is not None:
            mixed = np.empty_like(z)
            for row in range(0, len(z), _MIX_ROWS):
                np.matmul(z[row : row + _MIX_ROWS], factor, out=mixed[row : row + _MIX_ROWS])
            z = mixed
        z *= scale
        z += mean
        z = z.reshape(n, steps, k)
        np.cumsum(z, axis=1, out=z)
        kept = z[:, keep, :]
        kept += start
        np.minimum(kept, _LOG_MAX32, out=kept)
        np.exp(kept, out=kept)
        np.einsum("pts,s->pt", kept, quantities, out=out[first : first + n])

    if threads == 1 or len(starts) == 1:
        for i in range(len(starts)):
            run(i)
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(starts))) as pool:
            list(pool.map(run, range(len(starts))))
    return out
