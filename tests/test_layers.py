"""The layout's one-way imports (DESIGN.md, "Layout"): what each floor pulls in
when a user imports it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _imported_by(module: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after importing ``module``."""
    code = (
        f"import json, sys, {module}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("module", "never"),
    [
        # agents stay light: no DuckDB, pandas or Streamlit in a service's process
        ("instrumentation", {"duckdb", "pandas", "streamlit", "store", "collector"}),
        ("instrumentation.agent", {"duckdb", "pandas", "streamlit", "store", "collector"}),
        # the store is the ground floor
        ("store", {"nats", "opentelemetry", "streamlit", "correlator", "collector"}),
        # the correlator reads the store; alerts go out through a publish it is given
        ("correlator.engine", {"nats", "opentelemetry", "streamlit", "collector", "dashboard"}),
        ("correlator.watch", {"nats", "opentelemetry", "streamlit", "collector", "dashboard"}),
        ("correlator.queries", {"nats", "opentelemetry", "streamlit", "collector", "dashboard"}),
        # the collector knows nothing of workflows
        ("collector.service", {"correlator", "dashboard", "streamlit"}),
    ],
)
def test_a_floor_imports_nothing_it_must_not(module: str, never: set[str]) -> None:
    assert _imported_by(module) & never == set()
