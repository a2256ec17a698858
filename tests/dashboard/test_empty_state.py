"""An empty or missing store shows a helpful empty state, not a stack trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dashboard.app_driver import open_dashboard, plain_texts


@pytest.mark.parametrize(
    "page",
    [
        None,
        "views/workflows.py",
        "views/workflow_detail.py",
        "views/choreography.py",
        "views/anomalies.py",
        "views/services.py",
    ],
)
def test_an_empty_store_points_to_the_demo(empty_store: Path, page: str | None):
    at = open_dashboard(empty_store, page=page)
    assert any("No traces in this store yet" in i.value for i in at.info)
    assert f"choreoscope demo --data {empty_store}" in plain_texts(at)  # this store


def test_the_sql_console_works_on_an_empty_store(empty_store: Path):
    at = open_dashboard(empty_store, page="views/sql_console.py")
    assert not at.info
    assert at.text_area(key="sql_text") is not None


def test_a_missing_store_explains_itself(tmp_path: Path):
    at = open_dashboard(tmp_path / "nowhere")
    assert any("No traces in this store yet" in i.value for i in at.info)
    assert any("no choreoscope store at" in t for t in plain_texts(at))
