"""Alert evaluation: time per tick for every alert on a feed, against a Python loop.

Run: .venv/bin/python benchmarks/bench_alerts.py [--alerts 100000] [--symbols 31]
Prints median and p99 milliseconds per tick of `AlertBook.check` (one vectorized pass
over all alerts: symbols' prices and 2,000 owners' portfolio totals, all three
conditions) and of the same rule evaluated alert by alert in Python, in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from finflow_panel.feed import CONDITIONS, PORTFOLIO, AlertBook


def build(alerts: int, symbols: int, owners: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    names = [f"S{i}" for i in range(symbols)]
    open_prices = rng.uniform(20, 500, symbols)
    book = AlertBook(names)
    for owner in range(owners):
        weights = rng.integers(0, 50, symbols).astype(float)
        book.set_weights(owner, weights)
    plain = []  # (index or weights, condition, value) for the Python baseline
    for i in range(alerts):
        owner = i % owners
        condition = CONDITIONS[i % 3]
        if i % 5 == 0:
            weights = book._weights[book._weight_rows[(owner, None)]]
            base = float(weights @ open_prices)
            target, ref = PORTFOLIO, weights
        else:
            j = int(rng.integers(symbols))
            base = float(open_prices[j])
            target, ref = names[j], j
        if condition == "moves by %":
            value = rng.uniform(0.5, 3.0)
        else:
            value = base * rng.uniform(0.97, 1.03)
        book.add(target, condition, value, owner=owner)
        plain.append((ref, condition, value))
    return book, plain, open_prices, rng


def python_check(plain, armed, prices, open_prices):
    fired = []
    for k, (ref, condition, value) in enumerate(plain):
        if isinstance(ref, int):
            current, base = prices[ref], open_prices[ref]
        else:
            current = sum(q * p for q, p in zip(ref, prices, strict=True))
            base = sum(q * p for q, p in zip(ref, open_prices, strict=True))
        if condition == "moves by %":
            true = abs(current / base - 1) * 100 >= value
        elif condition == "above":
            true = current >= value
        else:
            true = current <= value
        if true and armed[k]:
            fired.append(k)
        armed[k] = not true
    return fired


def timings(fn, ticks):
    out = []
    for prices in ticks:
        start = time.perf_counter()
        fn(prices)
        out.append((time.perf_counter() - start) * 1000.0)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=31)
    parser.add_argument("--owners", type=int, default=2000)
    parser.add_argument("--ticks", type=int, default=500)
    args = parser.parse_args()
    book, plain, open_prices, rng = build(args.alerts, args.symbols, args.owners)
    walk = open_prices * np.exp(np.cumsum(rng.normal(0, 0.004, (args.ticks, args.symbols)), axis=0))
    vector = timings(lambda p: book.check(p, open_prices), walk)
    fired = sum(len(book.check(p, open_prices)) for p in walk)
    loop_ticks = walk[: max(5, args.ticks // 50)]
    armed = [True] * len(plain)
    loop = timings(lambda p: python_check(plain, armed, list(p), list(open_prices)), loop_ticks)
    print(f"{args.alerts:,} alerts on {args.symbols} symbols, {args.owners:,} owners' portfolios")
    print(f"{'method':<22}{'ticks':>7}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'vectorized (numpy)':<22}{len(vector):>7}{np.median(vector):>10.3f}"
          f"{np.percentile(vector, 99):>10.3f}")  # fmt: skip
    print(f"{'Python loop':<22}{len(loop):>7}{np.median(loop):>10.3f}"
          f"{np.percentile(loop, 99):>10.3f}")  # fmt: skip
    print(
        f"speed-up (p50): {np.median(loop) / np.median(vector):.0f}x;"
        f" alerts fired over {args.ticks} ticks: {fired:,}"
    )
    print("target: < 2 ms per tick for 100,000 alerts:",
          "met" if np.median(vector) < 2.0 else "NOT met")  # fmt: skip


if __name__ == "__main__":
    main()
