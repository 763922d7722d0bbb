"""Correlated geometric random walk, vectorized over symbols and steps.

Only numpy is imported here: the simulator is the bottom layer of the package and must
stay usable (and importable) without any server or plotting library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["DEFAULT_DRIFT", "DEFAULT_VOLATILITY", "RandomWalk", "TRADING_DAY"]

#: One trading day as a fraction of a year, the default time step.
TRADING_DAY = 1.0 / 252.0
DEFAULT_START_PRICE = 100.0
DEFAULT_DRIFT = 0.05
DEFAULT_VOLATILITY = 0.25

# Bounds that keep every log-increment finite; beyond them the model is meaningless anyway.
MAX_ABS_DRIFT = 10.0
MAX_VOLATILITY = 10.0
# exp() of anything in this range is a positive, finite float64.
_LOG_MIN, _LOG_MAX = -700.0, 700.0
# Noise is drawn and correlated in blocks of a size fixed per walk, so that how the caller
# chunks its `step` calls cannot change a single bit of the result (BLAS reductions depend
# on the shape of the product; a fixed shape makes them repeatable).
_BLOCK_VALUES = 1 << 16

PerSymbol = float | Sequence[float] | Mapping[str, float] | np.ndarray | None
Seed = int | np.random.Generator | None


def _per_symbol(
    name: str,
    value: PerSymbol,
    symbols: tuple[str, ...],
    default: float,
) -> np.ndarray:
    """Broadcast a scalar, sequence or ``{symbol: value}`` mapping to one float per symbol."""
    if value is None:
        return np.full(len(symbols), default, dtype=np.float64)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(symbols))
        if unknown:
            raise ValueError(
                f"{name}: unknown symbol(s) {', '.join(map(repr, unknown))}; "
                f"the walk's symbols are {', '.join(symbols)}"
            )
        out = np.full(len(symbols), default, dtype=np.float64)
        for i, symbol in enumerate(symbols):
            if symbol in value:
                out[i] = _as_float(name, value[symbol], symbol)
        return out
    array = np.asarray(value)
    if array.ndim == 0:
        return np.full(len(symbols), _as_float(name, array.item()), dtype=np.float64)
    if array.shape != (len(symbols),):
        raise ValueError(
            f"{name}: expected one value per symbol ({len(symbols)}), got shape {array.shape}"
        )
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: values must be numbers, got {list(array)!r}") from None


def _as_float(name: str, value: object, symbol: str | None = None) -> float:
    where = f" for {symbol}" if symbol else ""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name}{where}: {value!r} is not a number") from None


def _check_range(name: str, values: np.ndarray, symbols, low, high, *, low_open=False):
    bad = ~np.isfinite(values) | (values > high)
    bad |= (values <= low) if low_open else (values < low)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(
            f"{name} for {symbols[i]} is {float(values[i])}; "
            f"it must be finite, {bound} and <= {high}"
        )


def correlation_factor(correlation: np.ndarray | Sequence, n: int) -> np.ndarray | None:
    """Validate a correlation matrix and return ``F`` with ``F.T @ F == correlation``.

    Returns ``None`` for the identity (independent symbols), which needs no mixing.
    Positive semi-definite (not only definite) matrices are accepted, so an eigen
    decomposition is used instead of a Cholesky factorization.
    """
    try:
        corr = np.array(correlation, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("correlation: the matrix must contain only numbers") from None
    if corr.shape != (n, n):
        raise ValueError(f"correlation: expected a {n}x{n} matrix, got shape {corr.shape}")
    if not np.isfinite(corr).all():
        raise ValueError("correlation: the matrix contains NaN or infinite values")
    tol = 1e-8
    if not np.allclose(corr, corr.T, rtol=0.0, atol=tol):
        i, j = np.unravel_index(np.argmax(np.abs(corr - corr.T)), corr.shape)
        raise ValueError(
            f"correlation: the matrix is not symmetric ([{i},{j}]={corr[i, j]!r} but "
            f"[{j},{i}]={corr[j, i]!r})"
        )
    if not np.allclose(np.diag(corr), 1.0, rtol=0.0, atol=tol):
        i = int(np.argmax(np.abs(np.diag(corr) - 1.0)))
        raise ValueError(f"correlation: the diagonal must be 1, [{i},{i}]={corr[i, i]!r}")
    if (np.abs(corr) > 1.0 + tol).any():
        raise ValueError("correlation: entries must lie within [-1, 1]")
    if np.array_equal(corr, np.eye(n)):
        return None
    corr = (corr + corr.T) / 2.0
    eigenvalues, eigenvectors = np.linalg.eigh(corr)
    if eigenvalues[0] < -1e-8 * max(1.0, n):
        raise ValueError(
            "correlation: the matrix is not positive semi-definite "
            f"(smallest eigenvalue {eigenvalues[0]:.3g})"
        )
    factor = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    return np.ascontiguousarray(factor.T)


class RandomWalk:
    """A seeded, correlated geometric random walk over several symbols.

    Log prices follow ``log S[t+1] = log S[t] + (mu - sigma**2 / 2) dt + sigma sqrt(dt) e``
    where ``e`` is a standard normal vector with the given correlation. All arithmetic is
    whole-array numpy; ``step(n)`` returns an ``(n, len(symbols))`` block.

    The walk is reproducible: the same seed and parameters give bit-identical prices, and
    ``step(1000)`` equals ten ``step(100)`` calls.

    Parameters
    ----------
    symbols : sequence of str
        Unique, non-empty symbol names; prices come back in this column order.
    start_prices : float, sequence or mapping, optional
        Price of each symbol before the first step (default 100). Must be > 0.
    drift : float, sequence or mapping, optional
        Annual drift ``mu`` (default 0.05), within [-10, 10].
    volatility : float, sequence or mapping, optional
        Annual volatility ``sigma`` (default 0.25), within [0, 10].
    correlation : array_like, optional
        Correlation matrix of the shocks: symmetric, unit diagonal, positive
        semi-definite. Default: independent symbols.
    dt : float
        Time step in years (default one trading day, 1/252), within (0, 1].
    seed : int, numpy.random.Generator or None
        Seed or generator; ``None`` draws fresh entropy.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        start_prices: PerSymbol = None,
        drift: PerSymbol = None,
        volatility: PerSymbol = None,
        correlation: np.ndarray | Sequence | None = None,
        dt: float = TRADING_DAY,
        seed: Seed = None,
    ) -> None:
        if isinstance(symbols, str):
            symbols = [s.strip() for s in symbols.split(",")]
        symbols = tuple(symbols)
        if not symbols:
            raise ValueError("symbols: at least one symbol is required")
        for symbol in symbols:
            if not isinstance(symbol, str) or not symbol.strip():
                raise ValueError(f"symbols: {symbol!r} is not a valid symbol name")
        seen: set[str] = set()
        duplicates = [s for s in symbols if s in seen or seen.add(s)]
        if duplicates:
            raise ValueError(f"symbols: duplicate symbol(s) {', '.join(sorted(set(duplicates)))}")
        self.symbols = symbols

        self.start_prices = _per_symbol("start_prices", start_prices, symbols, DEFAULT_START_PRICE)
        _check_range("start_prices", self.start_prices, symbols, 0.0, 1e300, low_open=True)
        self.drift = _per_symbol("drift", drift, symbols, DEFAULT_DRIFT)
        _check_range("drift", self.drift, symbols, -MAX_ABS_DRIFT, MAX_ABS_DRIFT)
        self.volatility = _per_symbol("volatility", volatility, symbols, DEFAULT_VOLATILITY)
        _check_range("volatility", self.volatility, symbols, 0.0, MAX_VOLATILITY)
        dt = _as_float("dt", dt)
        if not (np.isfinite(dt) and 0.0 < dt <= 1.0):
            raise ValueError(f"dt is {dt!r}; it must be a time step in years within (0, 1]")
        self.dt = dt
        n = len(symbols)
        self._factor = None if correlation is None else correlation_factor(correlation, n)
        self.correlation = (
            np.eye(n) if correlation is None else np.array(correlation, dtype=np.float64)
        )

        if isinstance(seed, np.random.Generator):
            self._rng = seed
        else:
            if seed is not None and (
                isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
            ):
                raise ValueError(
                    f"seed must be a non-negative integer or a Generator, not {seed!r}"
                )
            self._rng = np.random.default_rng(seed)

        self._mean = (self.drift - 0.5 * self.volatility**2) * dt
        self._scale = self.volatility * np.sqrt(dt)
        self._block_rows = max(1, _BLOCK_VALUES // n)
        self._increments = np.empty((0, n))
        self._position = 0
        self._block_state = None  # the generator's state before the current block
        self._log_price = np.log(self.start_prices)
        self._prices = self.start_prices.copy()
        self.steps_taken = 0

    def __repr__(self) -> str:
        return (
            f"RandomWalk({len(self.symbols)} symbols, dt={self.dt:.6g}, "
            f"steps_taken={self.steps_taken})"
        )

    @property
    def prices(self) -> np.ndarray:
        """The current price of each symbol (a copy)."""
        return self._prices.copy()

    def _refill(self) -> None:
        self._block_state = self._rng.bit_generator.state
        noise = self._rng.standard_normal((self._block_rows, len(self.symbols)))
        if self._factor is not None:
            noise = noise @ self._factor
        noise *= self._scale
        noise += self._mean
        self._increments = noise
        self._position = 0

    def _take(self, n: int, out: np.ndarray) -> None:
        filled = 0
        while filled < n:
            if self._position == len(self._increments):
                self._refill()
            count = min(n - filled, len(self._increments) - self._position)
            out[filled : filled + count] = self._increments[self._position : self._position + count]
            self._position += count
            filled += count

    def step(self, n: int = 1) -> np.ndarray:
        """Advance the walk by ``n`` steps and return the new prices.

        Parameters
        ----------
        n : int
            Number of steps, at least 1.

        Returns
        -------
        numpy.ndarray
            Float64 array of shape ``(n, len(symbols))``, positive and finite.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"steps must be an integer, not {type(n).__name__}")
        if n < 1:
            raise ValueError(f"steps must be at least 1, got {n}")
        n = int(n)
        log_prices = np.empty((n, len(self.symbols)))
        if n <= len(self._increments) - self._position:
            # The live path (one small tick): a view-free copy from the buffer.
            log_prices[:] = self._increments[self._position : self._position + n]
            self._position += n
        else:
            self._take(n, log_prices)
        # Sequential accumulation from the carried state keeps chunked == whole bit for bit.
        log_prices[0] += self._log_price
        np.cumsum(log_prices, axis=0, out=log_prices)
        self._log_price = log_prices[-1].copy()
        self.steps_taken += n
        np.clip(log_prices, _LOG_MIN, _LOG_MAX, out=log_prices)
        prices = np.exp(log_prices, out=log_prices)
        self._prices = prices[-1].copy()
        return prices

    # -- state, to continue the walk elsewhere -----------------------------------------

    def get_state(self) -> dict:
        """Everything needed to continue this walk exactly (JSON-serializable).

        The generator's state is the one before the current block of increments was
        drawn, with the position reached in it: `set_state` draws the block again, so
        the continued walk is the one this walk would have taken.
        """
        return {
            "log_price": self._log_price.tolist(),
            "prices": self._prices.tolist(),
            "steps_taken": self.steps_taken,
            # Before the current block was drawn (and the place reached in it), or now
            # if none has been drawn yet.
            "rng": self._block_state or self._rng.bit_generator.state,
            "block": self._block_state is not None,
            "position": self._position,
        }

    def set_state(self, state: dict) -> None:
        """Continue from `get_state` of a walk with the same symbols and parameters."""
        log_price = np.array(state["log_price"], dtype=np.float64)
        prices = np.array(state["prices"], dtype=np.float64)
        n = len(self.symbols)
        if log_price.shape != (n,) or prices.shape != (n,):
            raise ValueError(f"walk state has {log_price.size} log prices for {n} symbols")
        if not (np.isfinite(log_price).all() and (prices > 0).all()):
            raise ValueError("walk state has prices that are not finite and positive")
        rng_state = state.get("rng")
        self._increments, self._position = np.empty((0, n)), 0
        self._block_state = None
        if rng_state is not None:  # None: continue the prices with this walk's generator
            self._rng.bit_generator.state = rng_state
            if state.get("block"):
                self._refill()
                self._position = int(state["position"])
        self._log_price = log_price
        self._prices = prices
        self.steps_taken = int(state["steps_taken"])
