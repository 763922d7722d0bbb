"""Import-layer rules: lower layers never load upper ones or the UI stack."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import finflow_panel

ROOT = Path(finflow_panel.__file__).parent

HEAVY = ("panel", "bokeh", "tornado")


@pytest.mark.parametrize(
    "module",
    ["finflow_panel", "finflow_panel.sim", "finflow_panel.model", "finflow_panel.store"],
)
def test_lower_layers_do_not_load_panel_bokeh_or_tornado(module):
    code = (
        f"import json, sys; import {module}; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def _imported_roots(package: str) -> dict[str, set[str]]:
    """Top-level modules each source file of ``package`` imports (relative ones excluded)."""
    roots: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
        roots[str(path.relative_to(ROOT))] = found
    return roots


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("sim", {"numpy"}),
        ("model", {"numpy", "pandas", "param"}),
        ("feed", {"numpy", "param", "tornado", "redis"}),  # redis: the optional extra
    ],
)
def test_layer_sources_import_only_what_their_layer_allows(package, allowed):
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path, roots in _imported_roots(package).items():
        assert roots - stdlib <= allowed, f"{path} imports {sorted(roots - stdlib - allowed)}"


def test_exported_members():
    assert sorted(finflow_panel.__all__) == sorted(
        [
            "Holding",
            "LiveDashboard",
            "Portfolio",
            "PortfolioError",
            "RandomWalk",
            "Replay",
            "SharedFeed",
            "TickBatch",
            "WhatIfExplorer",
            "__version__",
            "calibrate",
            "load_prices",
            "load_replay",
            "simulate",
            "what_if",
        ]
    )
    for name in finflow_panel.__all__:
        assert getattr(finflow_panel, name) is not None
