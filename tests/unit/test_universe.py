"""The market's universe: every symbol it quotes."""

from __future__ import annotations

import numpy as np
import pytest

from finflow_panel.model import Portfolio, PortfolioError, Universe


def test_the_bundled_universe_holds_the_sample_and_walks_all_of_it():
    universe = Universe.default()
    assert 25 <= len(universe) <= 35
    universe.check(Portfolio.sample().symbols)
    walk = universe.random_walk(seed=3)
    assert walk.symbols == universe.symbols
    np.testing.assert_array_equal(walk.start_prices, universe.prices)
    record = universe.record("AAPL")
    assert record["name"] == "Apple Inc." and record["price"] > 0 and record["volatility"] > 0


def test_unknown_symbols_are_named():
    universe = Universe.default()
    with pytest.raises(PortfolioError, match="unknown symbol 'ZZZ': not in the market"):
        universe.check(["AAPL", "ZZZ"])
    with pytest.raises(PortfolioError, match="unknown symbols 'X1', 'X2'"):
        universe.check(["X1", "X2"])
    with pytest.raises(PortfolioError, match="unknown symbol 'NOPE'"):
        universe.holding("NOPE", 1)
    held = universe.holding("MSFT", 2, cost_basis=300)
    assert (held.name, held.quantity, held.cost_basis) == ("Microsoft Corporation", 2.0, 300.0)


def test_a_universe_file_and_its_errors(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("symbol,name,price,volatility\nAAA,Alpha,10,0.2\nBBB,,20,\n")
    universe = Universe.from_csv(path)
    assert universe.symbols == ("AAA", "BBB") and universe.names == ("Alpha", "BBB")
    assert universe.volatility == {"AAA": 0.2}
    for text, message in [
        ("symbol,name\nAAA,x\n", r"missing column\(s\) price"),
        ("symbol,price\nAAA,0\n", r"u.csv:2: price for AAA is zero"),
        ("symbol,price\nAAA,1\nAAA,2\n", r"u.csv:3: duplicate symbol AAA"),
        ("symbol,price\n", "no symbols"),
    ]:
        path.write_text(text)
        with pytest.raises(PortfolioError, match=message):
            Universe.from_csv(path)


def test_a_server_portfolio_outside_the_universe_joins_it():
    sample = Portfolio.sample()
    own = Portfolio((Universe.default().holding("AAPL", 1),) + sample.holdings[1:2])
    universe = Universe.default()
    assert universe.including(own) is universe
    from finflow_panel.model import Holding

    odd = Portfolio((Holding("ODD", 1, 42.0, volatility=0.1),))
    bigger = Universe.default().including(odd)
    assert bigger.symbols[-1] == "ODD" and bigger.prices[-1] == 42.0
    assert bigger.volatility["ODD"] == 0.1
