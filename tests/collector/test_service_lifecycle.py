"""The collector's life at its edges: connecting to a NATS that is not there,
and stopping (Ctrl-C, SIGTERM) at any moment."""

from __future__ import annotations

import logging

import pytest

from choreoscope.nats_server import free_port
from collector.service import connect_nats
from instrumentation.errors import BusUnavailableError


async def test_a_nats_that_is_down_is_logged_once_not_twice_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with (
        caplog.at_level(logging.WARNING, logger="collector.service"),
        pytest.raises(BusUnavailableError, match="Connect call failed"),
    ):
        await connect_nats([url], {}, first_connect_timeout=3.0)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
