"""Real price history: every accepted file form and every error, calibration against
known parameters, the frequency inference, and VaR backtesting by hand-computed cases."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import finflow_panel as ff
from finflow_panel.cli import main
from finflow_panel.model import PriceFileError, risk
from finflow_panel.model.history import infer_periods_per_year


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


WIDE = """
Date,AAPL,MSFT
2024-01-03,184.25,370.60
2024-01-02,185.64,370.87
2024-01-04,181.91,367.94
"""


def test_a_wide_file_is_sorted_by_date_in_the_files_column_order(tmp_path):
    prices = ff.load_prices(write(tmp_path, "wide.csv", WIDE))
    assert list(prices.columns) == ["AAPL", "MSFT"]
    assert prices.index.name == "date" and prices.index.is_monotonic_increasing
    assert list(prices.index.strftime("%Y-%m-%d")) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert prices.loc["2024-01-02", "AAPL"] == 185.64
    assert all(dtype == np.float64 for dtype in prices.dtypes)


def test_a_long_file_pivots_in_order_of_first_appearance_with_the_preferred_price(tmp_path):
    text = """
    DATE,Symbol,Close,Adj Close
    2024-01-02,MSFT,370.87,368.00
    2024-01-02,AAPL,185.64,184.00
    2024-01-03,AAPL,184.25,183.00
    2024-01-03,MSFT,370.60,367.00
    """
    path = write(tmp_path, "long.csv", "\n".join(s.strip() for s in text.split("\n")))
    prices = ff.load_prices(path)
    assert list(prices.columns) == ["MSFT", "AAPL"]
    assert prices.loc["2024-01-03", "AAPL"] == 183.00  # adj close preferred over close
    for column in ("price", "close", "adj_close"):
        frame = pd.DataFrame({"date": ["2024-01-02", "2024-01-03"], "symbol": ["X", "X"],
                              column: [1.0, 2.0]})  # fmt: skip
        assert ff.load_prices(frame)["X"].tolist() == [1.0, 2.0]


def test_an_ohlc_file_is_one_symbol_named_by_the_files_stem(tmp_path):
    text = """
    date,open,high,low,close,volume
    2024-01-02,187.15,188.44,183.89,185.64,82488700
    2024-01-03,184.22,185.88,183.43,184.25,58414500
    """
    path = write(tmp_path, "AAPL.csv", "\n".join(s.strip() for s in text.split("\n")))
    prices = ff.load_prices(path)
    assert list(prices.columns) == ["AAPL"] and prices["AAPL"].tolist() == [185.64, 184.25]


def test_parquet_and_frames_with_a_date_index_are_read(tmp_path):
    frame = pd.DataFrame(
        {"AAPL": [1.0, 2.0], "MSFT": [3.0, 4.0]},
        index=pd.DatetimeIndex(["2024-01-02", "2024-01-03"], name="when"),
    )
    frame.to_parquet(tmp_path / "p.parquet")
    for source in (tmp_path / "p.parquet", frame):
        prices = ff.load_prices(source)
        assert list(prices.columns) == ["AAPL", "MSFT"] and prices["MSFT"].tolist() == [3.0, 4.0]


def test_gaps_are_forward_filled_with_a_warning_saying_how_many(tmp_path):
    text = "date,A,B\n2024-01-01,,5\n2024-01-02,1,\n2024-01-03,,7\n2024-01-04,3,8\n"
    with pytest.warns(UserWarning, match=r"forward-filled 2 missing price\(s\); dropped 1"):
        prices = ff.load_prices(write(tmp_path, "gaps.csv", text))
    assert prices["A"].tolist() == [1.0, 1.0, 3.0] and prices["B"].tolist() == [5.0, 7.0, 8.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a file without gaps warns nothing
        ff.load_prices(write(tmp_path, "ok.csv", WIDE))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("d.csv", "date,A\n2024-01-02,1\nyesterday,2\n",
         r"d.csv, row 3: cannot read the date 'yesterday'"),
        ("n.csv", "date,A\n2024-01-02,1\n2024-01-03,abc\n",
         r"n.csv, row 3: A's price is not a number: 'abc'"),
        ("z.csv", "date,A\n2024-01-02,0\n", r"z.csv, row 2: A's price must be positive, got 0"),
        ("m.csv", "date,A\n2024-01-02,-3.5\n",
         r"m.csv, row 2: A's price must be positive, got -3.5"),
        ("u.csv", "date,A\n2024-01-02,1\n2024-01-02,2\n", r"u.csv, row 3: duplicate date"),
        ("l.csv", "date,symbol,close\n2024-01-02,A,1\n2024-01-02,A,2\n",
         r"l.csv, row 3: duplicate date/symbol"),
        ("p.csv", "date,symbol,volume\n2024-01-02,A,1\n",
         r"p.csv: a long file needs a price column"),
        ("x.csv", "when,A\n2024-01-02,1\n", r"x.csv: no date column"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_the_row_and_the_problem(tmp_path, name, text, message):
    with pytest.raises(PriceFileError, match=message):
        ff.load_prices(write(tmp_path, name, text))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(PriceFileError, match=r"nope.csv: no such file"):
        ff.load_prices(tmp_path / "nope.csv")


def _gbm(drift, volatility, correlation, years=40, seed=3):
    symbols = ("A", "B", "C")
    return ff.simulate(
        symbols, steps=252 * years, seed=seed, start_prices=[50.0, 100.0, 20.0], drift=drift,
        volatility=volatility, correlation=correlation,
    )  # fmt: skip


def test_calibration_recovers_known_parameters_within_their_sampling_error():
    drift, volatility = np.array([0.08, -0.02, 0.15]), np.array([0.20, 0.35, 0.50])
    correlation = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.1], [-0.3, 0.1, 1.0]])
    years = 40
    prices = _gbm(drift, volatility, correlation, years)
    result = ff.calibrate(prices)
    n = result.observations
    assert result.periods_per_year == 252 and n == 252 * years - 1
    # standard errors: sigma / sqrt(2n) for the volatility, sigma / sqrt(years) for the
    # drift, (1 - rho**2) / sqrt(n) for a correlation; 4 of them allowed
    volatility_error = 4 * volatility.max() / math.sqrt(2 * n)
    np.testing.assert_allclose(result.volatility, volatility, atol=volatility_error)
    assert np.all(np.abs(result.drift.to_numpy() - drift) < 4 * volatility / math.sqrt(years))
    tolerance = 4 * (1 - correlation**2) / math.sqrt(n) + 1e-12
    assert np.all(np.abs(result.correlation.to_numpy() - correlation) <= tolerance)
    assert list(result.last_prices) == list(prices.iloc[-1])


def test_a_calibrated_walk_continues_from_the_last_prices_with_those_parameters():
    prices = _gbm([0.05, 0.05, 0.05], [0.2, 0.3, 0.4], None, years=5)
    result = ff.calibrate(prices)
    walk = result.random_walk(seed=1)
    np.testing.assert_array_equal(walk.prices, prices.iloc[-1].to_numpy())
    np.testing.assert_allclose(walk.volatility, result.volatility.to_numpy())
    np.testing.assert_allclose(walk.drift, result.drift.to_numpy())
    assert walk.dt == pytest.approx(1 / 252)
    # the same seed gives the same path: reproducible from here
    np.testing.assert_array_equal(walk.step(5), result.random_walk(seed=1).step(5))


@pytest.mark.parametrize(
    ("freq", "expected"),
    [("B", 252), ("D", 252), ("W-FRI", 52), ("MS", 12), ("QS", 4), ("YS", 1),
     ("5min", 252 * 6.5 * 12), ("1h", 252 * 6.5)],
)  # fmt: skip
def test_the_frequency_is_inferred_from_the_dates(freq, expected):
    index = pd.date_range("2020-01-01", periods=40, freq=freq)
    assert infer_periods_per_year(index) == pytest.approx(expected)


def test_calibrate_refuses_what_it_cannot_estimate():
    with pytest.raises(ValueError, match="at least 3 dates"):
        ff.calibrate(pd.DataFrame({"A": [1.0, 2.0]}, index=pd.date_range("2024", periods=2)))
    with pytest.raises(ValueError, match="positive and finite"):
        ff.calibrate(pd.DataFrame({"A": [1.0, -2.0, 3.0]}, index=pd.date_range("2024", periods=3)))


def test_the_calibrate_command_prints_the_table_and_json(tmp_path, capsys):
    path = tmp_path / "prices.csv"
    _gbm([0.05] * 3, [0.2, 0.3, 0.4], None, years=2).rename_axis("date").to_csv(path)
    assert main(["calibrate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "504 dates" in out and "252 periods a year" in out
    assert "volatility" in out and "correlation" in out
    assert main(["calibrate", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["symbols"] == ["A", "B", "C"] and data["periods_per_year"] == 252
    assert data["volatility"]["B"] == pytest.approx(0.3, abs=0.05)
    assert main(["calibrate", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


# -- VaR backtesting -------------------------------------------------------------------


def test_var_backtest_by_hand_median_var_over_three_periods():
    returns = pd.Series([-0.01, 0.02, -0.03, 0.01, -0.05, 0.00])
    result = risk.var_backtest(returns, confidence=0.5, window=3)
    # medians of the windows before periods 3, 4, 5: -0.01, 0.01, -0.03 -> VaR 0.01, -0.01, 0.03
    assert result.var.tolist() == pytest.approx([0.01, -0.01, 0.03])
    assert result.exceptions.index.tolist() == [4]  # -0.05 lost more than -(-0.01)
    assert (result.observations, result.exception_count) == (3, 1)
    assert result.expected_exceptions == 1.5
    # LR = -2 [3 ln 0.5 - (ln 1/3 + 2 ln 2/3)] = 0.339798;
    # p = P(chi2_1 > LR) = 2 (1 - Phi(sqrt(LR))) = 2 (1 - Phi(0.582922)) = 0.559946
    assert result.kupiec_statistic == pytest.approx(0.339798, abs=1e-6)
    assert result.kupiec_pvalue == pytest.approx(0.559946, abs=1e-5)


def test_kupiec_matches_the_textbook_case_and_its_edges():
    # 6 exceptions in 250 days at 99% (expected 2.5): LR 3.5554, p 0.0594
    statistic, pvalue = risk.kupiec_pof(6, 250, 0.99)
    assert statistic == pytest.approx(3.5554, abs=1e-4)
    assert pvalue == pytest.approx(0.0594, abs=1e-4)
    # 8: LR = -2 [8 ln .01 + 242 ln .99 - 8 ln .032 - 242 ln .968] = 7.7336, p 0.0054
    statistic, pvalue = risk.kupiec_pof(8, 250, 0.99)
    assert statistic == pytest.approx(7.7336, abs=1e-4)
    assert pvalue == pytest.approx(0.0054, abs=1e-4)
    # no exceptions: LR = -2 * 250 ln 0.99 = 5.0252
    assert risk.kupiec_pof(0, 250, 0.99)[0] == pytest.approx(5.0252, abs=1e-4)
    # exactly as many as expected: no evidence against the model
    assert risk.kupiec_pof(5, 500, 0.99) == (pytest.approx(0.0, abs=1e-12), pytest.approx(1.0))


def test_a_normal_var_backtest_on_normal_returns_passes_kupiec():
    rng = np.random.default_rng(5)
    returns = pd.Series(rng.normal(0.0, 0.01, 3000))
    result = risk.var_backtest(returns, confidence=0.99, window=250, method="normal")
    assert result.observations == 2750
    assert result.var.mean() == pytest.approx(0.01 * 2.326348, rel=0.05)
    assert result.kupiec_pvalue > 0.01
    historical = risk.var_backtest(returns, confidence=0.99, window=250)
    assert historical.exception_count > 0
    with pytest.raises(ValueError, match="nothing to test"):
        risk.var_backtest(returns[:100], window=250)
    with pytest.raises(ValueError, match="method"):
        risk.var_backtest(returns, method="garch")


def test_a_calibrated_walk_can_start_from_other_prices():
    prices = pd.DataFrame(
        {"A": [10.0, 11.0, 10.5, 11.5], "B": [5.0, 5.5, 5.2, 5.1]},
        index=pd.bdate_range("2024-01-01", periods=4),
    )
    model = ff.calibrate(prices)
    np.testing.assert_array_equal(model.random_walk(seed=1).prices, [11.5, 5.1])
    np.testing.assert_array_equal(model.random_walk(seed=1, start_prices=[10, 5]).prices, [10, 5])
