"""What-ifs: the fast Monte Carlo paths, their summary, and the explorer's controls."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from finflow_panel import Holding, Portfolio
from finflow_panel.model.history import calibrate
from finflow_panel.model.whatif import (
    BAND_POINTS,
    MAX_WORK,
    uniform_correlation,
    what_if,
)
from finflow_panel.sim import RandomWalk, portfolio_value_paths

ONE = Portfolio((Holding("AAA", 10, 100.0, drift=0.08, volatility=0.3),))


def _normal_quantile(q: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)


def test_value_paths_are_reproducible_whatever_the_threads():
    walk = RandomWalk(
        ["A", "B", "C"], start_prices=[10, 20, 30], correlation=uniform_correlation(0.4, 3)
    )
    a = portfolio_value_paths(walk, [1, 2, 3], steps=50, paths=3_000, seed=5, threads=1)
    b = portfolio_value_paths(walk, [1, 2, 3], steps=50, paths=3_000, seed=5, threads=2)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3_000, 50) and a.dtype == np.float32
    c = portfolio_value_paths(walk, [1, 2, 3], steps=50, paths=3_000, seed=6)
    assert not np.array_equal(a, c)
    at = portfolio_value_paths(walk, [1, 2, 3], steps=50, paths=3_000, at=[10, 50], seed=5)
    np.testing.assert_array_equal(at, a[:, [9, 49]])  # only the asked-for steps are valued
    assert walk.steps_taken == 0  # the walk itself does not move


def test_value_paths_follow_the_geometric_walk():
    # One symbol, mu 0.08, sigma 0.3, a year of trading days: log(S_T / S_0) is normal
    # with mean (mu - sigma^2/2) and standard deviation sigma.
    walk = RandomWalk(["A"], start_prices=50.0, drift=0.08, volatility=0.3)
    final = portfolio_value_paths(walk, [2.0], steps=252, paths=40_000, at=[252], seed=1)[:, 0]
    logs = np.log(final / 100.0)
    standard_error = 0.3 / math.sqrt(40_000)
    assert abs(logs.mean() - (0.08 - 0.045)) < 4 * standard_error
    assert abs(logs.std() - 0.3) < 4 * 0.3 / math.sqrt(2 * 40_000)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps must be a whole number"),
        ({"paths": 2.5}, "paths must be a whole number"),
        ({"quantities": [1, 2]}, "quantities: expected 1 values"),
        ({"at": [0]}, r"at: steps to value must lie within 1\.\.10"),
        ({"at": [11]}, r"within 1\.\.10"),
    ],
)
def test_value_paths_refuse_bad_arguments(kwargs, match):
    walk = RandomWalk(["A"])
    arguments = {"quantities": [1.0], "steps": 10, "paths": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        portfolio_value_paths(walk, **arguments)


def test_what_if_summarizes_the_paths_as_documented():
    result = what_if(ONE, horizon=252, paths=20_000, seed=3, confidence=0.95)
    bands = result.bands
    assert list(bands.columns) == ["p5", "p25", "p50", "p75", "p95"]
    assert bands.index[0] == 0 and bands.index[-1] == 252 and len(bands) == BAND_POINTS + 1
    assert (bands.iloc[0] == 1000.0).all()  # today: the start value in every band
    assert (np.diff(bands.to_numpy(), axis=1) >= 0).all()  # bands are ordered
    losses = 1000.0 - result.final
    assert result.var == pytest.approx(np.quantile(losses, 0.95))
    assert result.expected_shortfall == pytest.approx(losses[losses >= result.var].mean())
    assert result.expected_shortfall >= result.var > 0
    # Against the closed form for one lognormal asset: VaR = S0 (1 - exp(m + s z)).
    m, s = 0.08 - 0.3**2 / 2, 0.3
    closed = 1000.0 * (1 - math.exp(m + s * _normal_quantile(0.05)))
    assert result.var == pytest.approx(closed, rel=0.03)
    assert result.summary()["probability_of_loss"] == pytest.approx((result.final < 1000).mean())


def test_what_if_scales_and_overrides_the_assumptions():
    sample = Portfolio.sample()
    base = what_if(sample, paths=5_000, seed=2)
    calmer = what_if(sample, paths=5_000, seed=2, volatility_scale=0.5)
    together = what_if(sample, paths=5_000, seed=2, correlation=0.9)
    apart = what_if(sample, paths=5_000, seed=2, correlation=-0.1)
    assert calmer.var < base.var / 1.5
    assert together.var > base.var > apart.var  # diversification, or none
    up = what_if(sample, paths=5_000, seed=2, drift_scale=3.0)
    assert up.bands["p50"].iloc[-1] > base.bands["p50"].iloc[-1]
    # The same seed and settings give the same answer.
    again = what_if(sample, paths=5_000, seed=2)
    np.testing.assert_array_equal(again.final, base.final)


def test_what_if_uses_a_calibrated_history():
    rng = np.random.default_rng(4)
    returns = rng.normal(0.0, 0.02, (500, 2))
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(returns, axis=0)),
        index=pd.bdate_range("2020-01-01", periods=500),
        columns=["AAA", "BBB"],
    )
    calibration = calibrate(prices)
    book = Portfolio((Holding("AAA", 1, 100.0), Holding("BBB", 1, 100.0)))
    calm = Portfolio(
        (Holding("AAA", 1, 100.0, volatility=0.05), Holding("BBB", 1, 100.0, volatility=0.05))
    )
    estimated = what_if(calm, paths=5_000, seed=1, calibration=calibration)
    own = what_if(calm, paths=5_000, seed=1)
    assert estimated.var > 3 * own.var  # 0.02 a day is ~0.32 a year, not 0.05
    with pytest.raises(ValueError, match="no estimate for CCC"):
        what_if(Portfolio((Holding("CCC", 1, 5.0),)), calibration=calibration)
    assert what_if(book, paths=500, seed=1, calibration=calibration).paths == 500


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon": 0}, "horizon must be at least 1"),
        ({"paths": 1}, "paths must be at least 2"),
        ({"paths": "many"}, "paths must be a whole number"),
        ({"confidence": 1.0}, r"confidence must be within \[0.5, 1\)"),
        ({"correlation": -0.5}, r"-0.5 between all 6 symbols is impossible.*\[-0.2, 1\]"),
        ({"correlation": float("nan")}, "impossible"),
        ({"volatility_scale": 100.0}, "volatility"),
        ({"paths": 50_000, "horizon": 1260}, "378 million draws; at most 60 million"),
    ],
)
def test_what_if_refuses_what_it_cannot_run(kwargs, match):
    with pytest.raises(ValueError, match=match):
        what_if(Portfolio.sample(), **kwargs)


def test_the_work_limit_can_be_lifted_in_a_notebook():
    assert 1_000 * 2_000 * 6 > MAX_WORK / 6
    result = what_if(Portfolio.sample(), horizon=2_000, paths=6_000, seed=1, max_work=None)
    assert result.horizon == 2_000


# -- the explorer ---------------------------------------------------------------------


def test_the_explorer_recomputes_as_settings_change():
    from finflow_panel import WhatIfExplorer

    explorer = WhatIfExplorer(paths=1_000)
    first = explorer.result
    assert first.paths == 1_000 and explorer._bands.data["p50"][-1] == first.bands["p50"].iloc[-1]
    assert "VaR 99%" in explorer._stats.object
    explorer.horizon = 20
    assert explorer.result.horizon == 20 and explorer._bands.data["step"][-1] == 20
    explorer.correlation = 0.99
    assert explorer.result is not first and explorer.error == ""
    override, rho = explorer._controls[4], explorer._controls[5]
    assert explorer.correlation == 0.99 and override.value and not rho.disabled
    rho._process_events({"value_throttled": 0.5})  # the browser's slider
    assert explorer.correlation == 0.5
    override._process_events({"value": False})
    assert explorer.correlation is None and rho.disabled
    explorer.correlation = 0.99
    counts = explorer._hist.data["count"]
    assert counts.sum() == 1_000  # every path's final value is in the histogram
    # The VaR line sits at today's value less the VaR; bins beyond it are red.
    result = explorer.result
    assert explorer._var_line.location == pytest.approx(result.start_value - result.var)
    red = np.array(explorer._hist.data["color"]) == "#ef4444"
    assert (np.asarray(explorer._hist.data["right"])[red] <= explorer._var_line.location).all()


def test_the_explorer_sets_back_what_a_browser_sends_out_of_range():
    from finflow_panel import WhatIfExplorer

    explorer = WhatIfExplorer(paths=1_000)
    horizon, paths = explorer._controls[0], explorer._controls[1]
    # Values past a slider's end, as a forged message would bring them in (Panel's own
    # path for a browser's change).
    horizon._process_events({"value_throttled": 5000, "value": 5000})
    assert explorer.horizon == 252 and horizon.value == 252
    drift = explorer._controls[2]
    drift._process_events({"value_throttled": float("nan")})
    assert explorer.drift_scale == 1.0
    with pytest.raises(ValueError, match="not in list"):  # Panel's own Select refuses it
        paths._process_events({"value": 10**9})
    seed = explorer._controls[7]
    seed._process_events({"value": -5, "value_throttled": -5})
    assert explorer.paths == 1_000 and explorer.seed == 1 and seed.value == 1
    # A setting that is valid alone but too much work with the others: said, not run.
    explorer.paths = 20_000
    explorer.horizon = 1_260
    assert explorer.result.paths == 20_000 and explorer.result.horizon == 252
    assert "151 million draws" in explorer.error and "151 million" in explorer._stats.object
    assert paths.value == 20_000
