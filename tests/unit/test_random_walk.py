from __future__ import annotations

import json

import numpy as np
import pytest

from finflow_panel import RandomWalk, simulate

SYMBOLS = ["AAPL", "MSFT", "GOOGL"]
CORRELATION = [[1.0, 0.6, -0.3], [0.6, 1.0, 0.1], [-0.3, 0.1, 1.0]]


def test_step_shape_and_positivity():
    walk = RandomWalk(SYMBOLS, start_prices=[190.0, 415.0, 172.0], seed=1)
    prices = walk.step(500)
    assert prices.shape == (500, 3)
    assert prices.dtype == np.float64
    assert np.isfinite(prices).all() and (prices > 0).all()
    assert walk.steps_taken == 500
    np.testing.assert_array_equal(walk.prices, prices[-1])


@pytest.mark.parametrize("correlation", [None, CORRELATION])
def test_same_seed_is_bit_identical(correlation):
    a = RandomWalk(SYMBOLS, correlation=correlation, seed=42).step(1000)
    b = RandomWalk(SYMBOLS, correlation=correlation, seed=42).step(1000)
    c = RandomWalk(SYMBOLS, correlation=correlation, seed=43).step(1000)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("correlation", [None, CORRELATION])
@pytest.mark.parametrize("chunks", [[100] * 10, [1] * 1000, [7, 993], [333, 1, 666]])
def test_chunked_equals_whole(correlation, chunks):
    whole = RandomWalk(SYMBOLS, correlation=correlation, seed=7).step(1000)
    walk = RandomWalk(SYMBOLS, correlation=correlation, seed=7)
    chunked = np.vstack([walk.step(n) for n in chunks])
    np.testing.assert_array_equal(chunked, whole)


def test_chunked_equals_whole_many_symbols():
    n = 300
    correlation = np.full((n, n), 0.4)
    np.fill_diagonal(correlation, 1.0)
    symbols = [f"S{i}" for i in range(n)]
    whole = RandomWalk(symbols, correlation=correlation, seed=3).step(600)
    walk = RandomWalk(symbols, correlation=correlation, seed=3)
    np.testing.assert_array_equal(np.vstack([walk.step(3) for _ in range(200)]), whole)


def test_accepts_a_generator():
    a = RandomWalk(SYMBOLS, seed=np.random.default_rng(5)).step(10)
    b = RandomWalk(SYMBOLS, seed=5).step(10)
    np.testing.assert_array_equal(a, b)


def test_extreme_valid_parameters_stay_positive_and_finite():
    walk = RandomWalk(["UP", "DOWN"], drift=[10.0, -10.0], volatility=10.0, dt=1.0, seed=0)
    prices = walk.step(2000)
    assert np.isfinite(prices).all() and (prices > 0).all()


def _log_returns(walk: RandomWalk, steps: int) -> np.ndarray:
    prices = np.vstack([walk.start_prices, walk.step(steps)])
    return np.diff(np.log(prices), axis=0)


def test_drift_and_volatility_match_the_model():
    # Tolerances are five standard errors of each estimator at this sample size.
    n, dt = 200_000, 1 / 252
    drift = np.array([0.3, -0.2, 0.05])
    vol = np.array([0.1, 0.4, 0.25])
    returns = _log_returns(RandomWalk(SYMBOLS, drift=drift, volatility=vol, dt=dt, seed=11), n)

    expected_mean = (drift - vol**2 / 2) * dt
    mean_se = vol * np.sqrt(dt) / np.sqrt(n)
    assert (np.abs(returns.mean(axis=0) - expected_mean) < 5 * mean_se).all()

    expected_var = vol**2 * dt
    var_se = expected_var * np.sqrt(2 / (n - 1))
    assert (np.abs(returns.var(axis=0, ddof=1) - expected_var) < 5 * var_se).all()


def test_correlation_matches_the_model():
    n = 100_000
    walk = RandomWalk(SYMBOLS, correlation=CORRELATION, volatility=[0.2, 0.3, 0.5], seed=12)
    sample = np.corrcoef(_log_returns(walk, n), rowvar=False)
    # Fisher's z of a sample correlation has standard error 1/sqrt(n - 3).
    tolerance = 5 / np.sqrt(n - 3)
    target = np.array(CORRELATION)
    upper = np.triu_indices(3, k=1)
    assert (np.abs(np.arctanh(sample[upper]) - np.arctanh(target[upper])) < tolerance).all()


def test_positive_semi_definite_correlation_is_accepted():
    walk = RandomWalk(["A", "B"], correlation=[[1.0, 1.0], [1.0, 1.0]], seed=1)
    returns = _log_returns(walk, 100)
    np.testing.assert_allclose(returns[:, 0], returns[:, 1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"correlation": [[1.0, 0.5], [0.4, 1.0]]}, "not symmetric"),
        ({"correlation": [[2.0, 0.5], [0.5, 1.0]]}, "diagonal must be 1"),
        ({"correlation": [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]}, "positive semi"),
        ({"correlation": [[1.0, 0.0], [0.0, 1.0]]}, "expected a 3x3"),
        ({"correlation": [[1.0, np.nan, 0], [np.nan, 1.0, 0], [0, 0, 1.0]]}, "NaN"),
        ({"drift": {"TSLA": 0.1}}, "unknown symbol(s) 'TSLA'"),
        ({"volatility": [0.1, 0.2]}, "one value per symbol"),
        ({"volatility": -0.1}, "volatility for AAPL is -0.1"),
        ({"start_prices": [1.0, 0.0, 2.0]}, "start_prices for MSFT is 0.0"),
        ({"start_prices": [1.0, np.inf, 2.0]}, "start_prices for MSFT is inf"),
        ({"drift": np.nan}, "drift for AAPL is nan"),
        ({"dt": 0}, "dt is 0"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    if "correlation" in kwargs and "3x3" not in message:
        symbols = SYMBOLS[: len(kwargs["correlation"])]
    else:
        symbols = SYMBOLS
    with pytest.raises(ValueError) as info:
        RandomWalk(symbols, **kwargs)
    assert message in str(info.value)


def test_bad_symbols():
    with pytest.raises(ValueError, match="duplicate symbol"):
        RandomWalk(["A", "A"])
    with pytest.raises(ValueError, match="at least one symbol"):
        RandomWalk([])


@pytest.mark.parametrize("steps", [0, -5])
def test_step_count_must_be_positive(steps):
    walk = RandomWalk(SYMBOLS, seed=1)
    with pytest.raises(ValueError, match=f"at least 1, got {steps}"):
        walk.step(steps)
    with pytest.raises(ValueError, match="at least 1"):
        simulate(SYMBOLS, steps)


def test_step_count_must_be_an_integer():
    with pytest.raises(TypeError, match="integer"):
        RandomWalk(SYMBOLS).step(2.5)


def test_simulate_returns_a_frame():
    frame = simulate(["MSFT", "AAPL"], 30, seed=2, start_prices={"AAPL": 190.0})
    assert list(frame.columns) == ["MSFT", "AAPL"]
    assert frame.shape == (30, 2)
    assert frame.index.dtype.kind == "M" and frame.index.name == "time"
    assert frame.index.is_monotonic_increasing
    assert (frame.dtypes == np.float64).all()
    walk = RandomWalk(["MSFT", "AAPL"], start_prices={"AAPL": 190.0}, seed=2)
    np.testing.assert_array_equal(frame.to_numpy(), walk.step(30))


def test_simulate_unknown_keyword_is_rejected():
    with pytest.raises(TypeError, match="volatilty"):
        simulate(SYMBOLS, 10, volatilty=0.2)


@pytest.mark.parametrize("taken", [0, 1, 7, 5000])
def test_a_walk_continues_exactly_from_another_walks_state(taken):
    # A new leader continues the market from the state another process left in Redis.
    walk = RandomWalk(SYMBOLS, seed=5, dt=1e-3)
    if taken:
        walk.step(taken)
    state = json.loads(json.dumps(walk.get_state()))  # as stored: JSON
    other = RandomWalk(SYMBOLS, seed=99, dt=1e-3)
    other.set_state(state)
    np.testing.assert_array_equal(other.prices, walk.prices)
    np.testing.assert_array_equal(other.step(3000), walk.step(3000))
    assert other.steps_taken == walk.steps_taken


def test_a_state_for_other_symbols_is_refused():
    state = RandomWalk(("A", "B"), seed=1).get_state()
    with pytest.raises(ValueError, match="2 log prices for 3 symbols"):
        RandomWalk(("A", "B", "C"), seed=1).set_state(state)
