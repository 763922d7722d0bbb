"""The command line, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from finflow_panel import simulate

CLI = [sys.executable, "-m", "finflow_panel.cli"]


def run(*args, cwd=None):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_simulate_writes_csv(tmp_path):
    out = tmp_path / "prices.csv"
    result = run("simulate", "--symbols", "AAPL,MSFT", "--steps", "1000", "--seed", "1",
                 "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out, index_col="time", parse_dates=True)
    assert list(frame.columns) == ["AAPL", "MSFT"] and len(frame) == 1000
    expected = simulate(["AAPL", "MSFT"], 1000, seed=1)
    np.testing.assert_allclose(frame.to_numpy(), expected.to_numpy(), rtol=1e-14)
    assert "wrote 1000 rows" in result.stderr


def test_simulate_writes_parquet_bit_identical(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "prices.parquet"
    result = run("simulate", "--symbols", "AAPL,MSFT", "--steps", "50", "--seed", "3",
                 "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(out)
    np.testing.assert_array_equal(frame.to_numpy(), simulate(["AAPL", "MSFT"], 50, seed=3))


def test_simulate_sample_portfolio_to_stdout():
    result = run("simulate", "--steps", "3", "--seed", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("time,AAPL,MSFT,GOOGL") and len(lines) == 4


def test_help_reads_well():
    result = run("simulate", "--help")
    assert result.returncode == 0
    for option in ("--symbols", "--steps", "--seed", "--out", "--portfolio"):
        assert option in result.stdout
    assert "example: finflow-panel simulate" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--steps", "0"], "--steps: must be at least 1, got 0"),
        (["simulate", "--steps", "x"], "--steps: 'x' is not a whole number"),
        (["simulate", "--seed", "-1"], "--seed: must be 0 or more"),
        (["simulate", "--symbols", "AAPL,,MSFT"], "has an empty symbol"),
        (["simulate", "--volatility", "-1"], "volatility for AAPL is -1.0"),
        (["simulate", "--out", "prices.xlsx"], "use a .csv or .parquet"),
        (["simulate", "--steps", "100000000000"], "GiB of memory; "),
        (["simulate", "--steps", "300000000", "--symbols", "A"], "run past the last date"),
        (["simulate", "--portfolio", "missing.csv"], "missing.csv: cannot read portfolio file"),
        (["simulate", "--bogus"], "unrecognized arguments: --bogus"),
        (["launch"], "invalid choice: 'launch'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_users_add_reads_stdin_hashes_and_users_remove_removes(tmp_path):
    path = tmp_path / "users.json"
    result = subprocess.run(
        [*CLI, "users", "add", "ann", "--basic-auth", str(path)],
        input="s3cret pass\nignored second line\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"added ann in {path}"
    from finflow_panel.store.credentials import check_password, load_credentials

    secret = load_credentials(path)["ann"]
    assert check_password("s3cret pass", secret) and "s3cret" not in path.read_text()
    result = run("users", "remove", "ann", "--basic-auth", str(path))
    assert result.returncode == 0 and load_credentials(path) == {}
    result = run("users", "remove", "ann", "--basic-auth", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"finflow-panel users: error: {path}: no user 'ann'"
