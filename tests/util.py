"""Shared test helpers: waiting on conditions and requiring optional tools."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable

import pytest

REQUIRE_ALL = os.environ.get("FINFLOW_REQUIRE_ALL") == "1"


def require_executable(name: str) -> str:
    """Path of an optional tool; skip without it, but fail when FINFLOW_REQUIRE_ALL=1."""
    path = shutil.which(name)
    if path is None:
        message = f"{name!r} is not on PATH (apt-get install -y {name})"
        if REQUIRE_ALL:
            pytest.fail(f"{message}; FINFLOW_REQUIRE_ALL=1 forbids skipping")
        pytest.skip(message)
    return path


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)
