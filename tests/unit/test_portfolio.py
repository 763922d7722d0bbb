from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finflow_panel import Holding, Portfolio, PortfolioError


@pytest.fixture
def portfolio():
    return Portfolio(
        (Holding("AAPL", 10, 100.0, "Apple"), Holding("MSFT", 5, 200.0, "Microsoft")),
        portfolio_id="p1",
        name="Test",
    )


def write(tmp_path, text, name="holdings.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sample_portfolio_ships_in_the_package():
    sample = Portfolio.sample()
    assert {"AAPL", "MSFT", "GOOGL"} <= set(sample.symbols)
    assert all(h.name and h.name != h.symbol for h in sample.holdings)
    assert (sample.quantities > 0).all()
    assert (sample.reference_prices > 10).all()


def test_valuation_against_hand_computed_values(portfolio):
    prices = pd.DataFrame(
        {"MSFT": [200.0, 210.0, 190.0], "AAPL": [100.0, 105.0, 90.0], "IGNORED": [1.0, 2.0, 3.0]},
        index=pd.date_range("2026-01-01", periods=3, freq="D"),
    )
    frame = portfolio.valuation(prices)
    # Reference value 10*100 + 5*200 = 2000.
    assert list(frame.columns) == ["total_value", "total_change", "total_change_percent"]
    np.testing.assert_allclose(frame["total_value"], [2000.0, 2100.0, 1850.0])
    np.testing.assert_allclose(frame["total_change"], [0.0, 100.0, -150.0])
    np.testing.assert_allclose(frame["total_change_percent"], [0.0, 5.0, -7.5])
    assert frame.index.equals(prices.index)


def test_valuation_against_an_explicit_reference(portfolio):
    prices = pd.DataFrame({"AAPL": [110.0], "MSFT": [220.0]})
    frame = portfolio.valuation(prices, reference={"AAPL": 110.0, "MSFT": 200.0})
    # Reference 1100 + 1000 = 2100, now 1100 + 1100 = 2200.
    np.testing.assert_allclose(frame["total_change"], [100.0])
    np.testing.assert_allclose(frame["total_change_percent"], [100 / 21])


def test_snapshot_has_the_original_message_fields(portfolio):
    prices = pd.DataFrame({"AAPL": [100.0, 110.0], "MSFT": [200.0, 190.0]})
    snapshot = portfolio.snapshot(prices)
    assert snapshot["portfolio_id"] == "p1"
    assert snapshot["portfolio_name"] == "Test"
    assert snapshot["total_value"] == pytest.approx(2050.0)
    assert snapshot["total_change"] == pytest.approx(50.0)
    assert snapshot["total_change_percent"] == pytest.approx(2.5)
    apple, microsoft = snapshot["investments"]
    assert apple == {
        "symbol": "AAPL",
        "name": "Apple",
        "current_price": 110.0,
        "change": 10.0,
        "change_percent": pytest.approx(10.0),
        "quantity": 10.0,
        "value": 1100.0,
    }
    assert microsoft["change"] == -10.0 and microsoft["change_percent"] == pytest.approx(-5.0)
    assert all(type(v) in (str, float) for v in apple.values())


def test_holdings_table_weights(portfolio):
    table = portfolio.holdings_table({"AAPL": 100.0, "MSFT": 300.0})
    assert list(table.columns) == [
        "symbol", "name", "current_price", "change", "change_percent", "quantity", "value", "weight"
    ]  # fmt: skip
    np.testing.assert_allclose(table["value"], [1000.0, 1500.0])
    np.testing.assert_allclose(table["weight"], [40.0, 60.0])


def test_prices_missing_a_held_symbol(portfolio):
    with pytest.raises(PortfolioError, match="no column for held symbol.*MSFT"):
        portfolio.valuation(pd.DataFrame({"AAPL": [1.0]}))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0, 0.0])
def test_bad_prices_are_named(portfolio, bad):
    with pytest.raises(PortfolioError, match="MSFT at row 1"):
        portfolio.valuation(pd.DataFrame({"AAPL": [1.0, 1.0], "MSFT": [1.0, bad]}))


def test_random_walk_starts_at_reference_prices(portfolio):
    walk = portfolio.random_walk(seed=1)
    assert walk.symbols == ("AAPL", "MSFT")
    np.testing.assert_array_equal(walk.prices, [100.0, 200.0])


def test_from_csv_round_trip(tmp_path):
    path = write(
        tmp_path,
        "symbol,name,quantity,price,volatility\nAAPL,Apple,10,100,0.3\nMSFT,,2.5,200,\n",
        "my_book.csv",
    )
    book = Portfolio.from_csv(path)
    assert book.symbols == ("AAPL", "MSFT")
    assert book.names == ("Apple", "MSFT")
    np.testing.assert_array_equal(book.quantities, [10.0, 2.5])
    assert book.holdings[0].volatility == 0.3 and book.holdings[1].volatility is None
    assert book.portfolio_id == "my_book"
    walk = book.random_walk(seed=1)
    np.testing.assert_array_equal(walk.volatility, [0.3, 0.25])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ": the file is empty"),
        ("symbol,quantity\nAAPL,1\n", ":1: missing column(s) price"),
        ("symbol,quantity,price,colour\nAAPL,1,2,red\n", ":1: unknown column(s) 'colour'"),
        ("symbol,quantity,price\n", "no holdings"),
        ("symbol,quantity,price\nAAPL,ten,100\n", ":2: quantity 'ten' for AAPL is not a number"),
        ("symbol,quantity,price\nAAPL,1,100\nMSFT,-3,200\n", ":3: quantity for MSFT is negative"),
        ("symbol,quantity,price\nAAPL,0,100\n", ":2: quantity for AAPL is zero"),
        ("symbol,quantity,price\nAAPL,1,nan\n", ":2: price for AAPL is nan; it must be finite"),
        ("symbol,quantity,price\nAAPL,inf,1\n", ":2: quantity for AAPL is inf"),
        (
            "symbol,quantity,price\nAAPL,1,2\nMSFT,1,2\nAAPL,3,4\n",
            ":4: duplicate symbol AAPL (first listed on line 2)",
        ),
        ("symbol,quantity,price\nAAPL,1\n", ":2: expected 3 fields, found 2"),
        ("symbol,quantity,price\n,1,2\n", ":2: the symbol is empty"),
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(PortfolioError) as info:
        Portfolio.from_csv(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(PortfolioError, match="cannot read portfolio file"):
        Portfolio.from_csv(tmp_path / "absent.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(PortfolioError, match="not a UTF-8"):
        Portfolio.from_csv(binary)


def test_constructor_validation():
    with pytest.raises(PortfolioError, match="duplicate symbol AAPL"):
        Portfolio((Holding("AAPL", 1, 1), Holding("AAPL", 2, 2)))
    with pytest.raises(PortfolioError, match="at least one holding"):
        Portfolio(())
    with pytest.raises(PortfolioError, match="quantity for X is -1"):
        Holding("X", -1, 1)


def _live_prices(portfolio, ticks=1600):
    walk = portfolio.random_walk(seed=11, dt=1.0 / (252 * 390))
    return pd.DataFrame(walk.step(ticks), columns=list(portfolio.symbols))


@pytest.mark.parametrize("chunk", [1, 2, 7, 16, 100])
def test_one_tick_has_one_value_whatever_the_batch(chunk):
    # Sessions value the same tick in batches of different sizes (history, first
    # delivery, Bokeh's route); the value must not depend on the batch's size.
    sample = Portfolio.sample()
    prices = _live_prices(sample)
    whole = sample.valuation(prices)["total_value"].to_numpy()
    pieces = np.concatenate(
        [
            sample.valuation(prices.iloc[i : i + chunk])["total_value"].to_numpy()
            for i in range(0, len(prices), chunk)
        ]
    )
    np.testing.assert_array_equal(pieces, whole)


def test_values_add_up_left_to_right_as_the_browser_does():
    sample = Portfolio.sample()
    prices = _live_prices(sample, ticks=50)
    totals = sample.valuation(prices)["total_value"].to_numpy()
    for row, total in zip(prices.to_numpy(), totals, strict=True):
        running = 0.0  # the KPI cards' values.reduce((a, b) => a + b, 0)
        for price, quantity in zip(row, sample.quantities, strict=True):
            running += float(price) * float(quantity)
        assert total == running
    snapshot = sample.snapshot(prices)
    assert snapshot["total_value"] == totals[-1]
