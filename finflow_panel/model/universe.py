"""The market's universe: every symbol it quotes, whatever any one portfolio holds."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..sim import RandomWalk
from .portfolio import LIMITS, Holding, Portfolio, PortfolioError, read_table

__all__ = ["Universe"]

_REQUIRED = ("symbol", "price")
_OPTIONAL = ("name", "drift", "volatility")


@dataclass(frozen=True)
class Universe:
    """Symbols a market quotes, with each one's name, reference price and (optionally)
    drift and volatility.

    Parameters
    ----------
    symbols, names : sequence of str
        One entry per symbol, symbols unique.
    prices : array-like
        Reference prices (the walk starts there), each > 0.
    drift, volatility : dict, optional
        Per-symbol parameters of the random walk; the walk's defaults otherwise.
    """

    symbols: tuple[str, ...]
    names: tuple[str, ...]
    prices: np.ndarray
    drift: dict[str, float] = field(default_factory=dict)
    volatility: dict[str, float] = field(default_factory=dict)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        symbols = tuple(self.symbols)
        prices = np.array(self.prices, dtype=np.float64)
        if not symbols:
            raise PortfolioError("a universe needs at least one symbol")
        if prices.shape != (len(symbols),) or len(self.names) != len(symbols):
            raise PortfolioError("a universe needs one name and one price per symbol")
        if not (np.isfinite(prices).all() and (prices > 0).all()):
            raise PortfolioError("a universe's prices must be finite and greater than 0")
        if (prices > LIMITS["price"]).any():
            raise PortfolioError(f"a universe's prices must be at most {LIMITS['price']:g}")
        index = {}
        for i, symbol in enumerate(symbols):
            if symbol in index:
                raise PortfolioError(f"duplicate symbol {symbol} in the universe")
            index[symbol] = i
        prices.flags.writeable = False
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(
            self, "names", tuple(n or s for n, s in zip(self.names, symbols, strict=True))
        )
        object.__setattr__(self, "prices", prices)
        object.__setattr__(self, "_index", index)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def default(cls) -> Universe:
        """The bundled universe: 30 large US stocks, the sample portfolio's among them."""
        path = Path(str(resources.files("finflow_panel.model") / "data" / "universe.csv"))
        return cls.from_csv(path)

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> Universe:
        """Read a universe from CSV: ``symbol``, ``price`` and optionally ``name``,
        ``drift`` and ``volatility``. Errors name the file and the line."""
        records = read_table(Path(path), _REQUIRED, _OPTIONAL, "symbols", "universe")
        return cls._from_records(records)

    @classmethod
    def _from_records(cls, records: Iterable[dict]) -> Universe:
        records = list(records)
        return cls(
            symbols=tuple(r["symbol"] for r in records),
            names=tuple(r.get("name") or r["symbol"] for r in records),
            prices=np.array([r["price"] for r in records]),
            drift={r["symbol"]: r["drift"] for r in records if r.get("drift") is not None},
            volatility={
                r["symbol"]: r["volatility"] for r in records if r.get("volatility") is not None
            },
        )

    def including(self, portfolio: Portfolio) -> Universe:
        """This universe and any of ``portfolio``'s symbols it lacks (with the portfolio's
        reference prices and parameters): a server's own portfolio file keeps working
        whatever the universe."""
        extra = [h for h in portfolio.holdings if h.symbol not in self]
        if not extra:
            return self
        records = [self.record(s) for s in self.symbols]
        records += [
            {"symbol": h.symbol, "name": h.name, "price": h.price, "drift": h.drift,
             "volatility": h.volatility}
            for h in extra
        ]  # fmt: skip
        return self._from_records(records)

    # -- lookup ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def index(self, symbol: str) -> int:
        try:
            return self._index[symbol]
        except KeyError:
            raise PortfolioError(self._unknown([symbol])) from None

    def record(self, symbol: str) -> dict[str, Any]:
        i = self.index(symbol)
        return {
            "symbol": symbol,
            "name": self.names[i],
            "price": float(self.prices[i]),
            "drift": self.drift.get(symbol),
            "volatility": self.volatility.get(symbol),
        }

    def _unknown(self, symbols: list[str]) -> str:
        shown = ", ".join(repr(s) for s in symbols[:5]) + (", ..." if len(symbols) > 5 else "")
        noun = "symbol" if len(symbols) == 1 else "symbols"
        return f"unknown {noun} {shown}: not in the market's universe of {len(self)} symbols"

    def check(self, symbols: Iterable[str]) -> None:
        """PortfolioError naming every symbol not in this universe."""
        unknown = [s for s in symbols if s not in self._index]
        if unknown:
            raise PortfolioError(self._unknown(unknown))

    def holding(self, symbol: str, quantity: float, cost_basis: float | None = None) -> Holding:
        """A holding of ``symbol`` with this universe's name and reference price."""
        record = self.record(symbol)
        return Holding(
            symbol=symbol,
            quantity=quantity,
            price=record["price"],
            name=record["name"],
            cost_basis=cost_basis,
        )

    def random_walk(self, seed: int | np.random.Generator | None = None, **kwargs: Any):
        """A `RandomWalk` over the whole universe, starting at its reference prices."""
        params: dict[str, Any] = {"start_prices": self.prices.copy()}
        if self.drift:
            params["drift"] = dict(self.drift)
        if self.volatility:
            params["volatility"] = dict(self.volatility)
        params.update(kwargs)
        return RandomWalk(self.symbols, seed=seed, **params)
