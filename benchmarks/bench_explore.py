"""What-if recompute: 10,000 paths x 252 steps x 6 symbols, against a plain baseline.

Run: .venv/bin/python benchmarks/bench_explore.py [--paths 10000] [--horizon 252] [--runs 15]

Prints milliseconds per recompute (p50 and p95 of ``--runs``) of `what_if` (what
``/explore`` runs when a widget changes: paths, bands, final values, VaR and ES) with
one worker thread and with two, and of the straightforward float64 version (one
60 MB draw with `simulate_paths`, every step valued, bands at every step) in the same
run, with the ratio. The target is < 500 ms for the default sizes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from finflow_panel import Portfolio
from finflow_panel.model.whatif import BAND_PERCENTILES, uniform_correlation, what_if
from finflow_panel.sim import simulate_paths


def baseline(portfolio, horizon, paths, confidence, seed):
    walk = portfolio.random_walk(seed=seed, correlation=uniform_correlation(0.3, len(portfolio)))
    values = simulate_paths(walk, horizon, paths) @ portfolio.quantities  # (paths, steps)
    bands = np.percentile(values, BAND_PERCENTILES, axis=0)
    losses = float(portfolio.reference_prices @ portfolio.quantities) - values[:, -1]
    var = np.quantile(losses, confidence)
    return bands, var, losses[losses >= var].mean()


def timed(fn, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000.0)
    return np.percentile(times, 50), np.percentile(times, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--horizon", type=int, default=252)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    portfolio = Portfolio.sample()
    print(
        f"{args.paths:,} paths x {args.horizon} steps x {len(portfolio)} symbols, "
        f"{args.runs} runs each (after one warm-up run)"
    )
    rows = []
    for label, threads in (("what_if, 2 threads", 2), ("what_if, 1 thread", 1)):

        def run(threads=threads):
            what_if(portfolio, args.horizon, args.paths, correlation=0.3, seed=1, threads=threads)

        run()
        rows.append((label, *timed(run, args.runs)))

    def plain():
        baseline(portfolio, args.horizon, args.paths, 0.99, 1)

    plain()
    rows.append(("baseline float64", *timed(plain, args.runs)))
    print(f"{'version':22s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for label, p50, p95 in rows:
        print(f"{label:22s} {p50:8.1f} {p95:8.1f}")
    fast, base = rows[0][1], rows[-1][1]
    verdict = "meets" if rows[0][2] < 500 else "misses"
    print(
        f"baseline / what_if (p50): {base / fast:.2f}x; p95 {rows[0][2]:.0f} ms {verdict} < 500 ms"
    )
    # The two agree: same model, different precision and draws.
    ours = what_if(portfolio, args.horizon, args.paths, correlation=0.3, seed=1)
    _, var, es = baseline(portfolio, args.horizon, args.paths, 0.99, 1)
    print(f"VaR 99%: what_if {ours.var:,.0f}, baseline {var:,.0f}; "
          f"ES: {ours.expected_shortfall:,.0f} vs {es:,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
