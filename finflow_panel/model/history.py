"""Real price history: load it from a user's file, and calibrate the simulator to it.

`load_prices` reads CSV or Parquet in the forms brokers, vendors and research datasets
use (wide, long, or one symbol's OHLC bars) into one table: a sorted, unique
``DatetimeIndex`` and one float column per symbol. Every problem is reported with the
file, the row and what is wrong with it. `calibrate` estimates each symbol's annual drift
and volatility and their correlation from log returns, and builds a `RandomWalk` that
continues from the last prices with those parameters.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..sim import RandomWalk, Replay
from ..sim.random_walk import MAX_ABS_DRIFT, MAX_VOLATILITY

__all__ = [
    "SAMPLE_PRICES",
    "Calibration",
    "PriceFileError",
    "calibrate",
    "date_labels",
    "infer_periods_per_year",
    "load_prices",
    "load_replay",
]

#: A real, public price history bundled with the package: month-end closes of AAPL,
#: AMZN, GOOG, IBM and MSFT, 2000-2010, in long form (``symbol``, ``date``, ``price``).
#: From the vega-datasets collection (BSD-3-Clause / MIT; see ``STOCKS_LICENSE.txt``
#: beside it), originally the Protovis examples' data.
SAMPLE_PRICES = Path(__file__).parent / "data" / "stocks.csv"

#: Column names (lower case) that hold a long file's price, preferred first.
PRICE_COLUMNS = ("adj close", "adj_close", "close", "price")
_DATE_COLUMNS = ("date", "datetime", "time", "timestamp")
_OHLC = ("open", "high", "low", "close")
#: Seconds of trading in a year of 252 sessions of 6.5 hours (intraday bars' year).
_TRADING_SECONDS = 252 * 6.5 * 3600


class PriceFileError(ValueError):
    """A price file (or frame) cannot be read: the message names it, the row and why."""


def load_prices(source, symbol: str | None = None) -> pd.DataFrame:
    """Prices from a CSV or Parquet file (a path) or a DataFrame, as one float column
    per symbol on a sorted, unique ``DatetimeIndex`` named ``date``.

    Accepted forms (column names are case-insensitive):

    * **wide**: a date column (``date``, ``datetime``, ``time`` or ``timestamp``, or the
      frame's index) and one column per symbol, in the file's order;
    * **long**: ``date``, ``symbol`` and a price (``adj close``, ``adj_close``, ``close``
      or ``price``, preferred in that order), symbols in order of first appearance;
    * **OHLC** bars of one symbol (``open``, ``high``, ``low``, ``close``): the close,
      named ``symbol`` or the file's stem.

    Gaps (a symbol without a price on a date) are forward-filled, with a warning saying
    how many; dates before every symbol has its first price are dropped. PriceFileError
    for unparseable dates, duplicate dates or date/symbol pairs, and non-numeric or
    non-positive prices, naming the row (the file's line, counting the header as 1).
    """
    name, frame = _read(source)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "symbol" in columns and "date" in columns:
        prices = _long(name, frame, columns)
    elif set(_OHLC) <= set(columns) and "symbol" not in columns:
        prices = _ohlc(name, frame, columns, symbol)
    else:
        prices = _wide(name, frame, columns)
    return _fill_gaps(name, prices)


def _read(source) -> tuple[str, pd.DataFrame]:
    if isinstance(source, pd.DataFrame):
        return "the frame", source.copy()
    path = Path(source)
    name = str(path)
    if not path.is_file():
        raise PriceFileError(f"{name}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            try:
                return name, pd.read_parquet(path)
            except ImportError:
                raise PriceFileError(
                    f"{name}: reading Parquet needs pyarrow: pip install 'finflow_panel[parquet]'"
                ) from None
        return name, pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except PriceFileError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise PriceFileError(f"{name}: not a readable {suffix or 'CSV'} file: {error}") from None


def _row(position: int) -> str:
    """How a user finds a row: its line in the file (the header is line 1)."""
    return f"row {position + 2}"


def _dates(name: str, values) -> pd.DatetimeIndex:
    if isinstance(values, pd.DatetimeIndex):
        dates = values
    else:
        raw = pd.Series(values, dtype=object)
        dates = pd.DatetimeIndex(pd.to_datetime(raw, errors="coerce", format="mixed"))
        bad = np.flatnonzero(dates.isna())
        if len(bad):
            i = int(bad[0])
            raise PriceFileError(f"{name}, {_row(i)}: cannot read the date {str(raw.iloc[i])!r}")
    if dates.tz is not None:
        dates = dates.tz_convert("UTC").tz_localize(None)
    return dates


def _numbers(name: str, frame: pd.DataFrame, column, label: str) -> np.ndarray:
    """A price column as floats; NaN where the cell is empty (a gap)."""
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.to_numpy(dtype=float)
    else:
        text = raw.astype(str).str.strip()
        values = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")
        values = values.to_numpy(dtype=float)
        empty = text.isin(["", "nan", "NaN", "null", "NA", "N/A", "None"]).to_numpy()
        bad = np.flatnonzero(np.isnan(values) & ~empty)
        if len(bad):
            i = int(bad[0])
            raise PriceFileError(f"{name}, {_row(i)}: {label} is not a number: {text.iloc[i]!r}")
    bad = np.flatnonzero(~np.isnan(values) & ~(values > 0))
    if len(bad):
        i = int(bad[0])
        raise PriceFileError(f"{name}, {_row(i)}: {label} must be positive, got {values[i]:g}")
    if np.isinf(values).any():
        i = int(np.flatnonzero(np.isinf(values))[0])
        raise PriceFileError(f"{name}, {_row(i)}: {label} is not finite")
    return values


def _check_unique(name: str, keys: pd.DataFrame, what: str) -> None:
    duplicated = np.flatnonzero(keys.duplicated().to_numpy())
    if len(duplicated):
        i = int(duplicated[0])
        raise PriceFileError(f"{name}, {_row(i)}: duplicate {what}")


def _wide(name: str, frame: pd.DataFrame, columns: dict) -> pd.DataFrame:
    date_key = next((c for c in _DATE_COLUMNS if c in columns), None)
    if date_key is not None:
        dates = _dates(name, frame[columns[date_key]].to_numpy())
        symbols = [c for c in frame.columns if c != columns[date_key]]
    elif isinstance(frame.index, pd.DatetimeIndex):
        dates = _dates(name, frame.index)
        symbols = list(frame.columns)
    else:
        raise PriceFileError(
            f"{name}: no date column (expected one named date, datetime, time or timestamp, "
            "or columns date, symbol and close for a long file)"
        )
    if not symbols:
        raise PriceFileError(f"{name}: no price columns besides the date")
    blank = [s for s in symbols if not str(s).strip() or str(s).startswith("Unnamed:")]
    if blank:
        raise PriceFileError(f"{name}: a price column has no symbol name")
    _check_unique(name, pd.DataFrame({"date": dates}), "date")
    data = {str(s).strip(): _numbers(name, frame, s, f"{str(s).strip()}'s price") for s in symbols}
    return pd.DataFrame(data, index=dates)


def _long(name: str, frame: pd.DataFrame, columns: dict) -> pd.DataFrame:
    price_key = next((c for c in PRICE_COLUMNS if c in columns), None)
    if price_key is None:
        raise PriceFileError(
            f"{name}: a long file needs a price column: one of {', '.join(PRICE_COLUMNS)}"
        )
    dates = _dates(name, frame[columns["date"]].to_numpy())
    symbols = frame[columns["symbol"]].astype(str).str.strip()
    empty = np.flatnonzero((symbols == "").to_numpy())
    if len(empty):
        raise PriceFileError(f"{name}, {_row(int(empty[0]))}: no symbol")
    _check_unique(name, pd.DataFrame({"d": dates, "s": symbols.to_numpy()}), "date/symbol")
    values = _numbers(name, frame, columns[price_key], "the price")
    table = pd.DataFrame({"date": dates, "symbol": symbols.to_numpy(), "price": values})
    wide = table.pivot(index="date", columns="symbol", values="price")
    order = list(dict.fromkeys(table["symbol"]))
    wide = wide[order]
    wide.columns.name = None
    return wide


def _ohlc(name: str, frame: pd.DataFrame, columns: dict, symbol: str | None) -> pd.DataFrame:
    date_key = next((c for c in _DATE_COLUMNS if c in columns), None)
    if date_key is None and not isinstance(frame.index, pd.DatetimeIndex):
        raise PriceFileError(f"{name}: an OHLC file needs a date column")
    values = frame[columns[date_key]].to_numpy() if date_key else frame.index
    dates = _dates(name, values)
    _check_unique(name, pd.DataFrame({"date": dates}), "date")
    label = symbol or (Path(name).stem if name != "the frame" else "close")
    close = _numbers(name, frame, columns["close"], "the close")
    return pd.DataFrame({label: close}, index=dates)


def _fill_gaps(name: str, prices: pd.DataFrame) -> pd.DataFrame:
    prices = prices.sort_index()
    prices.index = pd.DatetimeIndex(prices.index, name="date")
    if prices.empty:
        raise PriceFileError(f"{name}: no prices")
    filled = prices.ffill()
    complete = filled.notna().all(axis=1).to_numpy()
    if not complete.any():
        raise PriceFileError(f"{name}: no date has a price for every symbol")
    first = int(np.argmax(complete))  # dates before every symbol's first price go
    gaps = int(prices.iloc[first:].isna().to_numpy().sum())
    prices = filled.iloc[first:]
    done = [f"forward-filled {gaps} missing price(s)"] if gaps else []
    if first:
        done.append(f"dropped {first} leading date(s) before every symbol had a price")
    if done:
        warnings.warn(f"{name}: {'; '.join(done)}", stacklevel=3)
    return prices.astype(float)


def date_labels(index: pd.DatetimeIndex) -> list[str]:
    """Each date as text, as precise as the index needs: ``2024-01-05`` for dates,
    ``2024-01-05 09:35`` for minute bars, with seconds where any has them."""
    index = pd.DatetimeIndex(index)
    if (index == index.normalize()).all():
        fmt = "%Y-%m-%d"
    elif (index.second == 0).all() and (index.microsecond == 0).all():
        fmt = "%Y-%m-%d %H:%M"
    else:
        fmt = "%Y-%m-%d %H:%M:%S"
    return list(index.strftime(fmt))


def load_replay(source, loop: bool = False) -> Replay:
    """A `Replay` of a price history (a path or a frame, read by `load_prices`): one
    row per step in date order, each labelled with its date."""
    prices = load_prices(source)
    return Replay(prices.columns, prices.to_numpy(), labels=date_labels(prices.index), loop=loop)


# -- calibration ----------------------------------------------------------------------


def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Periods a year from the index's typical spacing: 252 for trading days, 52 weekly,
    12 monthly, 4 quarterly, 1 yearly; intraday bars by their spacing (a 252-session
    year of 6.5-hour sessions: 5-minute bars are 19,656 a year)."""
    if len(index) < 2:
        raise ValueError("at least two dates are needed to infer the spacing")
    spacing = pd.Series(index).diff().dropna().median()
    days = spacing / pd.Timedelta(days=1)
    if days >= 300:
        return 1.0
    if days >= 80:
        return 4.0
    if days >= 25:
        return 12.0
    if days >= 5:
        return 52.0
    if days >= 0.9:
        return 252.0
    seconds = spacing / pd.Timedelta(seconds=1)
    if seconds <= 0:
        raise ValueError("the dates are not increasing")
    return _TRADING_SECONDS / seconds


@dataclass(frozen=True)
class Calibration:
    """Per-symbol annual ``drift`` (the geometric walk's mu) and ``volatility``, their
    ``correlation`` and ``last_prices``, estimated from ``observations`` log returns at
    ``periods_per_year``."""

    drift: pd.Series
    volatility: pd.Series
    correlation: pd.DataFrame
    last_prices: pd.Series
    periods_per_year: float
    observations: int

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.drift.index)

    def table(self) -> pd.DataFrame:
        """Drift, volatility and last price per symbol (what ``finflow-panel calibrate`` prints)."""
        return pd.DataFrame(
            {"drift": self.drift, "volatility": self.volatility, "last_price": self.last_prices}
        )

    def to_json(self) -> dict:
        return {
            "periods_per_year": self.periods_per_year,
            "observations": self.observations,
            "symbols": list(self.symbols),
            "drift": self.drift.to_dict(),
            "volatility": self.volatility.to_dict(),
            "last_prices": self.last_prices.to_dict(),
            "correlation": self.correlation.to_numpy().tolist(),
        }

    def random_walk(self, seed=None, dt: float | None = None, start_prices=None) -> RandomWalk:
        """A `RandomWalk` with these parameters starting from the last prices (or
        ``start_prices``), stepping ``dt`` years (default one period of the history).
        Drift and volatility are clipped to what the walk accepts."""
        return RandomWalk(
            self.symbols,
            start_prices=self.last_prices.to_numpy() if start_prices is None else start_prices,
            drift=np.clip(self.drift.to_numpy(), -MAX_ABS_DRIFT, MAX_ABS_DRIFT),
            volatility=np.clip(self.volatility.to_numpy(), 0.0, MAX_VOLATILITY),
            correlation=_nearest_correlation(self.correlation.to_numpy()),
            dt=min(1.0, 1.0 / self.periods_per_year) if dt is None else dt,
            seed=seed,
        )


def _nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` with negative eigenvalues (rounding, constant series) clipped to 0 and
    the diagonal rescaled to 1: a matrix the walk can factor."""
    matrix = np.nan_to_num((matrix + matrix.T) / 2.0)
    np.fill_diagonal(matrix, 1.0)
    values, vectors = np.linalg.eigh(matrix)
    if values.min() >= -1e-12:
        return matrix
    fixed = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    scale = np.sqrt(np.clip(np.diag(fixed), 1e-300, None))
    fixed = fixed / np.outer(scale, scale)
    np.fill_diagonal(fixed, 1.0)
    return fixed


def calibrate(prices: pd.DataFrame, periods_per_year: float | None = None) -> Calibration:
    """Annual drift and volatility per symbol and their correlation, from log returns of
    ``prices`` (a `load_prices` table). ``periods_per_year`` is inferred from the index
    when not given (`infer_periods_per_year`).

    With log returns ``r`` per period: volatility = std(r) * sqrt(P), and drift (the
    walk's mu) = mean(r) * P + volatility**2 / 2, since a geometric walk's log returns
    average (mu - sigma**2 / 2) per year.
    """
    if not isinstance(prices, pd.DataFrame) or prices.shape[1] == 0:
        raise ValueError("prices must be a DataFrame with one column per symbol")
    if len(prices) < 3:
        raise ValueError(f"at least 3 dates are needed to calibrate, got {len(prices)}")
    values = prices.to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError("prices must be positive and finite (load them with load_prices)")
    if periods_per_year is None:
        if not isinstance(prices.index, pd.DatetimeIndex):
            raise ValueError("periods_per_year is needed for prices without a DatetimeIndex")
        periods_per_year = infer_periods_per_year(prices.index)
    periods_per_year = float(periods_per_year)
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    log_returns = np.diff(np.log(values), axis=0)
    volatility = log_returns.std(axis=0, ddof=1) * math.sqrt(periods_per_year)
    drift = log_returns.mean(axis=0) * periods_per_year + volatility**2 / 2.0
    symbols = [str(s) for s in prices.columns]
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(log_returns, rowvar=False) if len(symbols) > 1 else np.eye(1)
    correlation = np.atleast_2d(np.nan_to_num(correlation))
    np.fill_diagonal(correlation, 1.0)
    return Calibration(
        drift=pd.Series(drift, index=symbols, name="drift"),
        volatility=pd.Series(volatility, index=symbols, name="volatility"),
        correlation=pd.DataFrame(correlation, index=symbols, columns=symbols),
        last_prices=pd.Series(values[-1], index=symbols, name="last_price"),
        periods_per_year=periods_per_year,
        observations=len(log_returns),
    )
