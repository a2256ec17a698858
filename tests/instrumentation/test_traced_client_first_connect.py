"""A TracedNats whose first connect finds no NATS: it fails soon, and says what to do."""

from __future__ import annotations

import pytest

from choreoscope.nats_server import free_port
from instrumentation import TracedNats
from instrumentation.errors import ChoreoscopeError, NatsUnreachableError
from tests.instrumentation.deterministic_spans import in_memory_telemetry


@pytest.mark.timeout(30)  # nats-py's own defaults take about two minutes
async def test_a_first_connect_to_nothing_fails_soon_naming_the_url_and_what_to_do():
    url = f"nats://127.0.0.1:{free_port()}"
    telemetry, _ = in_memory_telemetry("billing")
    with pytest.raises(NatsUnreachableError) as raised:
        await TracedNats.connect(url, service_name="billing", telemetry=telemetry)
    error = raised.value
    assert isinstance(error, ChoreoscopeError) and error.transient
    message = str(error)
    assert message.startswith(f"could not connect to NATS at {url} (ConnectionRefusedError")
    assert "nats-server is running there" in message
    assert "`choreoscope nats` or `make demo` starts one" in message
    assert "TracedNats.connect(servers=...) names it" in message


@pytest.mark.timeout(30)
async def test_the_callers_own_connect_options_decide_how_often_it_tries():
    url = f"nats://127.0.0.1:{free_port()}"
    telemetry, _ = in_memory_telemetry("billing")
    failures: list[Exception] = []

    async def count(exc: Exception) -> None:
        failures.append(exc)

    with pytest.raises(NatsUnreachableError, match="6 attempts"):
        await TracedNats.connect(
            [url],
            service_name="billing",
            telemetry=telemetry,
            max_reconnect_attempts=5,
            reconnect_time_wait=0.05,
            error_cb=count,
        )
    assert len(failures) == 6  # the first attempt and the five the caller asked for
