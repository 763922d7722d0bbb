from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from finflow_panel import Holding, Portfolio, RandomWalk
from finflow_panel.model import risk
from finflow_panel.sim import simulate_paths


def test_returns_simple_and_log():
    prices = pd.Series([100.0, 110.0, 99.0])
    np.testing.assert_allclose(risk.returns(prices), [0.10, -0.10])
    np.testing.assert_allclose(risk.returns(prices, log=True), [math.log(1.1), math.log(0.9)])


def test_annualized_volatility():
    assert risk.annualized_volatility(pd.Series([0.01, -0.01])) == pytest.approx(
        math.sqrt(0.0002) * math.sqrt(252)
    )


def test_max_drawdown():
    assert risk.max_drawdown(pd.Series([100.0, 120.0, 90.0, 130.0, 65.0])) == pytest.approx(-0.5)
    frame = pd.DataFrame({"a": [1.0, 2.0, 1.0], "b": [1.0, 1.0, 1.0]})
    np.testing.assert_allclose(risk.max_drawdown(frame), [-0.5, 0.0])


def test_historical_var_interpolates_the_loss_quantile():
    observed = [0.04, -0.05, 0.01, -0.02, 0.03]
    # 20% quantile of the sorted returns at position 0.8: -0.05 + 0.8 * 0.03 = -0.026.
    assert risk.historical_var(observed, confidence=0.8) == pytest.approx(0.026)
    assert risk.historical_var(observed, confidence=0.8, value=1000) == pytest.approx(26.0)


@pytest.mark.parametrize("confidence", [0.4, 1.0])
def test_var_rejects_a_bad_confidence(confidence):
    with pytest.raises(ValueError, match="confidence"):
        risk.historical_var([0.01], confidence)


def test_simulate_paths_shape_and_reproducibility():
    walk = RandomWalk(["A", "B"], start_prices=[10.0, 20.0], seed=3)
    paths = simulate_paths(walk, steps=5, paths=4)
    assert paths.shape == (4, 5, 2) and (paths > 0).all()
    again = simulate_paths(RandomWalk(["A", "B"], start_prices=[10.0, 20.0], seed=3), 5, 4)
    np.testing.assert_array_equal(paths, again)
    np.testing.assert_array_equal(walk.prices, [10.0, 20.0])  # the walk did not move
    with pytest.raises(ValueError, match="paths"):
        simulate_paths(walk, 5, 0)


def test_monte_carlo_var_matches_the_lognormal_closed_form():
    mu, sigma, dt, horizon, n, confidence = 0.05, 0.3, 1 / 252, 10, 200_000, 0.99
    book = Portfolio((Holding("X", 10, 100.0),))
    result = risk.monte_carlo_var(
        book, horizon, n, confidence, seed=4, drift=mu, volatility=sigma, dt=dt
    )
    v0 = 1000.0
    m, s = (mu - sigma**2 / 2) * dt * horizon, sigma * math.sqrt(dt * horizon)
    x = m + s * NormalDist().inv_cdf(1 - confidence)
    exact = v0 * (1 - math.exp(x))
    # Standard error of a sample quantile: sqrt(p (1 - p) / n) / density at the quantile.
    density = NormalDist(m, s).pdf(x) / (v0 * math.exp(x))
    se = math.sqrt(confidence * (1 - confidence) / n) / density
    assert result["value"] == pytest.approx(v0)
    assert abs(result["var"] - exact) < 5 * se
    assert result["expected_shortfall"] > result["var"]


def test_correlation_raises_monte_carlo_var():
    book = Portfolio((Holding("A", 1, 100.0), Holding("B", 1, 100.0)))
    independent = risk.monte_carlo_var(book, 5, 50_000, seed=1)
    correlated = risk.monte_carlo_var(book, 5, 50_000, seed=1, correlation=[[1.0, 0.9], [0.9, 1.0]])
    assert correlated["var"] > 1.2 * independent["var"]
