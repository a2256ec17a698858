"""Fixture stores for the dashboard tests: built once per session, read-only after."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import StoreLayout
from tests.dashboard.fixture_store import build_recruitment_store


@pytest.fixture(scope="session")
def recruitment_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recruitment scenario's store (see fixture_store.py). Tests must not write to it."""
    return build_recruitment_store(tmp_path_factory.mktemp("recruitment") / "data").root


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    layout = StoreLayout.at(tmp_path / "empty")
    layout.ensure()
    return layout.root
