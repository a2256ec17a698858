"""Shared fixtures: a real nats-server with JetStream on a free port, real stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from choreoscope.nats_server import EmbeddedNats
from store import StoreLayout


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A real nats-server with JetStream, on 127.0.0.1 and a free port, per test."""
    server = EmbeddedNats(store_dir=tmp_path / "nats", log_file=tmp_path / "nats-server.log")
    with server:
        yield server


@pytest.fixture
def store_layout(tmp_path: Path) -> StoreLayout:
    """A new, empty trace store in the test's temporary directory."""
    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    return layout
