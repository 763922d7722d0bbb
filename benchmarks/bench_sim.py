"""Simulator speed: ns per generated price point, against a raw draw and a naive loop.

Run: .venv/bin/python benchmarks/bench_sim.py
Prints a table; every ratio is against a baseline measured in the same run.
"""

from __future__ import annotations

import random
import statistics
import time

import numpy as np

from finflow_panel import RandomWalk

SYMBOLS, STEPS = 1_000, 1_000


def per_call(fn, repeat: int, number: int = 1) -> float:
    """Median seconds per call of ``fn`` over ``repeat`` timings of ``number`` calls."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        timings.append((time.perf_counter() - start) / number)
    return statistics.median(timings)


def naive_mock_feed(prices: list[float], steps: int) -> None:
    """The original generator: one random.uniform per symbol per tick, in Python."""
    for _ in range(steps):
        for i in range(len(prices)):
            prices[i] = round(prices[i] * (1 + random.uniform(-0.02, 0.02)), 2)


def main() -> None:
    points = SYMBOLS * STEPS
    symbols = [f"S{i}" for i in range(SYMBOLS)]

    rng = np.random.default_rng(0)
    raw = per_call(lambda: rng.standard_normal((STEPS, SYMBOLS)), repeat=15)

    walk = RandomWalk(symbols, seed=0)
    walk.step(STEPS)  # warm up
    ours = per_call(lambda: walk.step(STEPS), repeat=15)

    correlation = np.full((SYMBOLS, SYMBOLS), 0.3)
    np.fill_diagonal(correlation, 1.0)
    correlated_walk = RandomWalk(symbols, correlation=correlation, seed=0)
    correlated = per_call(lambda: correlated_walk.step(STEPS), repeat=5)

    naive_symbols, naive_steps = 100, 100
    naive_prices = [100.0] * naive_symbols
    naive = per_call(lambda: naive_mock_feed(naive_prices, naive_steps), repeat=7)
    naive_ns = naive / (naive_symbols * naive_steps) * 1e9

    tick_walk = RandomWalk([f"T{i}" for i in range(10)], seed=0)
    tick = per_call(lambda: tick_walk.step(1), repeat=7, number=20_000)

    raw_ns, ours_ns = raw / points * 1e9, ours / points * 1e9
    rows = [
        ("rng.standard_normal (ceiling)", f"{raw_ns:8.2f} ns/pt", "1.00x"),
        ("RandomWalk.step, independent", f"{ours_ns:8.2f} ns/pt", f"{ours_ns / raw_ns:.2f}x raw"),
        (
            "RandomWalk.step, full 1000x1000 correlation",
            f"{correlated / points * 1e9:8.2f} ns/pt",
            f"{correlated / raw:.2f}x raw",
        ),
        (
            f"naive random.uniform loop ({naive_symbols}x{naive_steps}, scaled)",
            f"{naive_ns:8.2f} ns/pt",
            f"{naive_ns / ours_ns:.1f}x slower than RandomWalk",
        ),
        ("one live tick, 10 symbols x 1 step", f"{tick * 1e6:8.2f} us/call", ""),
    ]
    print(f"RandomWalk benchmark: {SYMBOLS} symbols x {STEPS} steps, numpy {np.__version__}")
    width = max(len(r[0]) for r in rows)
    for name, figure, ratio in rows:
        print(f"  {name:<{width}}  {figure:>16}  {ratio}")
    print("targets:")
    print(f"  step within 2x of raw draw ....... {'met' if ours_ns <= 2 * raw_ns else 'MISSED'}")
    print(f"  >= 5x faster than naive loop ..... {'met' if naive_ns >= 5 * ours_ns else 'MISSED'}")
    print(f"  10-symbol tick < 10 us ........... {'met' if tick < 10e-6 else 'MISSED'}")


if __name__ == "__main__":
    main()
