"""Portfolio holdings, their validation and vectorized valuation.

No panel or bokeh here: views receive a `Portfolio` and render it themselves.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..sim import RandomWalk

__all__ = [
    "HOLDING_COLUMNS",
    "VALUATION_COLUMNS",
    "Holding",
    "Portfolio",
    "PortfolioError",
    "portfolio_values",
]

REQUIRED_COLUMNS = ("symbol", "quantity", "price")
#: Upper bounds of a holding's numbers: far above any real share (price, shares
#: outstanding), and low enough that values stay finite however the prices move.
LIMITS = {"price": 1e9, "quantity": 1e12}
OPTIONAL_COLUMNS = ("name", "drift", "volatility", "cost_basis")
#: Columns of `Portfolio.valuation`, as named in the original feed's messages.
VALUATION_COLUMNS = ("total_value", "total_change", "total_change_percent")
#: Columns of `Portfolio.holdings_table`.
HOLDING_COLUMNS = (
    "symbol",
    "name",
    "current_price",
    "change",
    "change_percent",
    "quantity",
    "value",
    "weight",
)


def portfolio_values(prices: np.ndarray, quantities: np.ndarray) -> np.ndarray:
    """The value of each row of ``prices`` (rows x holdings) held in ``quantities``.

    Summed left to right across the holdings, one row independently of the others:
    ``prices @ quantities`` goes through BLAS, whose rounding of a row depends on how
    many rows are in the product, so one tick valued in batches of different sizes came
    out different in its last bits. ``cumsum`` along a row is sequential by definition,
    and gives the same bits as the browser's ``values.reduce((a, b) => a + b, 0)``.
    """
    values = np.asarray(prices, dtype=np.float64) * quantities
    return np.cumsum(values, axis=-1)[..., -1]


class PortfolioError(ValueError):
    """A portfolio, its file or a price table is invalid; the message says where and why."""


@dataclass(frozen=True)
class Holding:
    """One position: ``quantity`` units of ``symbol``.

    ``price`` is the reference price (the last close): it seeds the simulator and is
    the baseline that `Portfolio.valuation` measures change against by default.
    """

    symbol: str
    quantity: float
    price: float
    name: str = ""
    drift: float | None = None
    volatility: float | None = None
    #: What one unit cost, where known: the base of the holding's unrealized P&L.
    cost_basis: float | None = None

    def __post_init__(self) -> None:
        symbol = self.symbol.strip() if isinstance(self.symbol, str) else ""
        if not symbol:
            raise PortfolioError(f"symbol {self.symbol!r} is empty or not text")
        object.__setattr__(self, "symbol", symbol)
        if not self.name:
            object.__setattr__(self, "name", symbol)
        for attr, positive in (("quantity", True), ("price", True)):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise PortfolioError(f"{attr} {value!r} for {symbol} is not a number")
            if not math.isfinite(value):
                raise PortfolioError(f"{attr} for {symbol} is {value}; it must be finite")
            if positive and value <= 0:
                raise PortfolioError(f"{attr} for {symbol} is {value}; it must be greater than 0")
            if value > LIMITS[attr]:
                raise PortfolioError(
                    f"{attr} for {symbol} is {value:g}; it must be at most {LIMITS[attr]:g}"
                )
            object.__setattr__(self, attr, float(value))
        for attr in ("drift", "volatility"):
            value = getattr(self, attr)
            if value is not None and not math.isfinite(value):
                raise PortfolioError(f"{attr} for {symbol} is {value}; it must be finite")
        cost = self.cost_basis
        if cost is not None:
            if isinstance(cost, bool) or not isinstance(cost, (int, float, np.number)):
                raise PortfolioError(f"cost basis {cost!r} for {symbol} is not a number")
            if not (math.isfinite(cost) and 0 < cost <= LIMITS["price"]):
                raise PortfolioError(
                    f"cost basis for {symbol} is {cost:g}; it must be greater than 0 and at "
                    f"most {LIMITS['price']:g}"
                )
            object.__setattr__(self, "cost_basis", float(cost))


def _sample_path() -> Path:
    return Path(str(resources.files("finflow_panel.model") / "data" / "sample_portfolio.csv"))


@dataclass(frozen=True)
class Portfolio:
    """A named set of holdings with unique symbols.

    Parameters
    ----------
    holdings : iterable of Holding
        At least one holding; symbols must be unique.
    portfolio_id : str
        Identifier, sent as ``portfolio_id`` in snapshots.
    name : str
        Display name, sent as ``portfolio_name``.
    """

    holdings: tuple[Holding, ...]
    portfolio_id: str = "portfolio"
    name: str = "Portfolio"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        holdings = tuple(self.holdings)
        if not holdings:
            raise PortfolioError("a portfolio needs at least one holding")
        index: dict[str, int] = {}
        for i, holding in enumerate(holdings):
            if not isinstance(holding, Holding):
                raise PortfolioError(f"holding {i} is a {type(holding).__name__}, not a Holding")
            if holding.symbol in index:
                raise PortfolioError(f"duplicate symbol {holding.symbol}")
            index[holding.symbol] = i
        object.__setattr__(self, "holdings", holdings)
        object.__setattr__(self, "_index", index)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def sample(cls) -> Portfolio:
        """The sample portfolio shipped with the package (AAPL, MSFT, GOOGL and more)."""
        return cls.from_csv(_sample_path(), portfolio_id="sample", name="Sample portfolio")

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        portfolio_id: str | None = None,
        name: str | None = None,
    ) -> Portfolio:
        """Read holdings from a CSV file.

        Required columns: ``symbol``, ``quantity``, ``price`` (reference price); optional:
        ``name``, ``drift``, ``volatility``. Errors name the file and the line.
        """
        path = Path(path)
        records = read_table(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, "holdings", "portfolio")
        holdings = [Holding(**record) for record in records]
        stem = path.stem
        return cls(
            holdings,
            portfolio_id=portfolio_id or stem,
            name=name or stem.replace("_", " ").capitalize(),
        )

    # -- arrays ---------------------------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(h.symbol for h in self.holdings)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.holdings)

    @property
    def quantities(self) -> np.ndarray:
        return np.array([h.quantity for h in self.holdings])

    @property
    def reference_prices(self) -> np.ndarray:
        return np.array([h.price for h in self.holdings])

    def __len__(self) -> int:
        return len(self.holdings)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def random_walk(self, seed: int | np.random.Generator | None = None, **kwargs: Any):
        """A `RandomWalk` over this portfolio's symbols, starting at its reference prices.

        Per-holding ``drift``/``volatility`` from the file are used unless overridden.
        """
        params: dict[str, Any] = {"start_prices": self.reference_prices}
        for attr in ("drift", "volatility"):
            given = {
                h.symbol: getattr(h, attr) for h in self.holdings if getattr(h, attr) is not None
            }
            if given:
                params[attr] = given
        params.update(kwargs)
        return RandomWalk(self.symbols, seed=seed, **params)

    # -- valuation ------------------------------------------------------------------------

    def price_matrix(self, prices: pd.DataFrame | np.ndarray | Mapping) -> np.ndarray:
        """Held symbols' prices as a float ``(rows, holdings)`` array, validated."""
        if isinstance(prices, pd.DataFrame):
            missing = [s for s in self.symbols if s not in prices.columns]
            if missing:
                raise PortfolioError(f"prices: no column for held symbol(s) {', '.join(missing)}")
            matrix = prices.loc[:, list(self.symbols)].to_numpy(dtype=np.float64)
        elif isinstance(prices, (Mapping, pd.Series)):
            missing = [s for s in self.symbols if s not in prices]
            if missing:
                raise PortfolioError(f"prices: no price for held symbol(s) {', '.join(missing)}")
            matrix = np.array([[float(prices[s]) for s in self.symbols]])
        else:
            matrix = np.asarray(prices, dtype=np.float64)
            if matrix.ndim == 1:
                matrix = matrix[np.newaxis, :]
            if matrix.ndim != 2 or matrix.shape[1] != len(self):
                raise PortfolioError(
                    f"prices: expected {len(self)} columns ({', '.join(self.symbols)}), "
                    f"got shape {matrix.shape}"
                )
        bad = ~np.isfinite(matrix) | (matrix <= 0)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise PortfolioError(
                f"prices: {self.symbols[col]} at row {row} is {matrix[row, col]}; "
                "prices must be finite and greater than 0"
            )
        return matrix

    def _reference(self, reference) -> np.ndarray:
        if reference is None:
            return self.reference_prices
        return self.price_matrix(reference)[0]

    def valuation(self, prices: pd.DataFrame, reference=None) -> pd.DataFrame:
        """Portfolio value over time, vectorized over every row of a price table.

        Parameters
        ----------
        prices : pandas.DataFrame
            One column per held symbol (extra columns are ignored), one row per time.
        reference : mapping, Series or array, optional
            Baseline prices for the change columns; default the holdings' ``price``.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``prices``, with columns ``total_value``, ``total_change`` and
            ``total_change_percent``.
        """
        matrix = self.price_matrix(prices)
        quantities = self.quantities
        total = portfolio_values(matrix, quantities)
        base = float(portfolio_values(self._reference(reference), quantities))
        change = total - base
        index = prices.index if isinstance(prices, pd.DataFrame) else None
        return pd.DataFrame(
            {
                "total_value": total,
                "total_change": change,
                "total_change_percent": change / base * 100.0,
            },
            index=index,
        )

    def holdings_table(self, prices, reference=None) -> pd.DataFrame:
        """Per-holding price, change, change %, quantity, value and weight at the last row."""
        current = self.price_matrix(prices)[-1]
        base = self._reference(reference)
        quantities = self.quantities
        values = current * quantities
        total = portfolio_values(current, quantities)
        return pd.DataFrame(
            {
                "symbol": self.symbols,
                "name": self.names,
                "current_price": current,
                "change": current - base,
                "change_percent": (current - base) / base * 100.0,
                "quantity": quantities,
                "value": values,
                "weight": values / total * 100.0,
            }
        )

    def snapshot(self, prices, reference=None) -> dict[str, Any]:
        """The last row of ``prices`` as the original feed's message (plain Python types)."""
        table = self.holdings_table(prices, reference)
        quantities = self.quantities
        total = float(portfolio_values(table["current_price"].to_numpy(), quantities))
        base = float(portfolio_values(self._reference(reference), quantities))
        fields = HOLDING_COLUMNS[:-1]
        return {
            "portfolio_id": self.portfolio_id,
            "portfolio_name": self.name,
            "total_value": total,
            "total_change": total - base,
            "total_change_percent": (total - base) / base * 100.0,
            "investments": [
                {f: (row[f] if isinstance(row[f], str) else float(row[f])) for f in fields}
                for row in table.to_dict("records")
            ],
        }


def read_table(path: Path, required: tuple, optional: tuple, what: str, kind: str) -> list:
    """The checked rows of the symbol table (a ``kind`` file) at ``path``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return read_records(path, handle, required, optional, what)
    except OSError as exc:
        raise PortfolioError(f"{path}: cannot read {kind} file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise PortfolioError(f"{path}: not a UTF-8 text (CSV) file") from None


def read_records(
    path: Path, handle: Iterable[str], required: tuple, optional: tuple, what: str
) -> list[dict]:
    """Rows of a symbol table (a portfolio, a universe) as checked keyword arguments;
    PortfolioError naming the file, the line and the problem."""
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        raise PortfolioError(f"{path}: the file is empty; expected a header line") from None
    except csv.Error as exc:
        raise PortfolioError(f"{path}:1: malformed CSV ({exc})") from None
    columns = [c.strip().lower() for c in header]
    missing = [c for c in required if c not in columns]
    if missing:
        raise PortfolioError(
            f"{path}:1: missing column(s) {', '.join(missing)}; "
            f"the header must contain {', '.join(required)}"
        )
    unknown = [c for c in columns if c not in required + optional]
    if unknown:
        raise PortfolioError(
            f"{path}:1: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(required + optional)}"
        )
    records: list[dict] = []
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise PortfolioError(
                    f"{path}:{line}: expected {len(columns)} fields, found {len(row)}"
                )
            record = dict(zip(columns, (cell.strip() for cell in row), strict=True))
            symbol = record["symbol"]
            if not symbol:
                raise PortfolioError(f"{path}:{line}: the symbol is empty")
            if symbol in first_line:
                raise PortfolioError(
                    f"{path}:{line}: duplicate symbol {symbol} (first listed on line "
                    f"{first_line[symbol]})"
                )
            first_line[symbol] = line
            numbers = {}
            for column in ("quantity", "price", "drift", "volatility", "cost_basis"):
                if column not in record or (column not in required and not record[column]):
                    continue
                text = record[column]
                try:
                    value = float(text)
                except ValueError:
                    raise PortfolioError(
                        f"{path}:{line}: {column} {text!r} for {symbol} is not a number"
                    ) from None
                if not math.isfinite(value):
                    raise PortfolioError(
                        f"{path}:{line}: {column} for {symbol} is {text}; it must be finite"
                    )
                if (column in required or column == "cost_basis") and value <= 0:
                    kind = "negative" if value < 0 else "zero"
                    raise PortfolioError(
                        f"{path}:{line}: {column} for {symbol} is {kind} ({text}); "
                        "it must be greater than 0"
                    )
                if value > LIMITS.get(column, math.inf):
                    raise PortfolioError(
                        f"{path}:{line}: {column} for {symbol} is {text}; "
                        f"it must be at most {LIMITS[column]:g}"
                    )
                numbers[column] = value
            records.append({"symbol": symbol, "name": record.get("name", ""), **numbers})
    except csv.Error as exc:
        raise PortfolioError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    if not records:
        raise PortfolioError(f"{path}: no {what}; add at least one row after the header")
    return records
