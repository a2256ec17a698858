"""configure(): its own provider, or the application's when there already is one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from instrumentation import Agent, ConfigurationError, TracedNats, configure
from tests.instrumentation.deterministic_spans import START_NS, in_memory_telemetry, span_dict

APP_WITH_ITS_OWN_PROVIDER = textwrap.dedent(
    """
    import asyncio, sys
    import nats
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from instrumentation import configure, wire
    from instrumentation.columnar_encoding import decode_columnar_batch

    url = sys.argv[1]
    other_backend = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(other_backend))
    trace.set_tracer_provider(app_provider)

    telemetry = configure(service_name="billing", nats_url=url, schedule_delay=0.05)
    assert trace.get_tracer_provider() is app_provider, "configure replaced the app's provider"
    trace.get_tracer("app").start_span("charge card").end()
    assert telemetry.force_flush(timeout=20)
    telemetry.shutdown()
    assert [s.name for s in other_backend.get_finished_spans()] == ["charge card"]

    async def read():
        nc = await nats.connect(url)
        sub = await nc.jetstream().pull_subscribe("choreo.spans.billing", stream=wire.SPANS_STREAM)
        [msg] = await sub.fetch(1, timeout=5)
        await nc.close()
        return decode_columnar_batch(msg.data)["name"]

    assert asyncio.run(read()) == ["charge card"]
    print("ok")
    """
)


def test_configure_adds_to_an_existing_global_provider_instead_of_replacing_it(nats_server):
    # a fresh interpreter: the global provider can be set only once per process
    result = subprocess.run(
        [sys.executable, "-c", APP_WITH_ITS_OWN_PROVIDER, nats_server.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("name", ["", "my service", "a.b", "orders.>"])
def test_a_service_name_that_cannot_end_a_subject_is_refused(name):
    with pytest.raises(ConfigurationError, match="service_name") as caught:
        configure(service_name=name, export=False, install_global=False)
    assert isinstance(caught.value, ValueError)


def test_an_unknown_encoding_is_refused_with_the_choices():
    with pytest.raises(ConfigurationError, match="'columnar' or 'otlp'"):
        configure(service_name="billing", encoding="json", install_global=False)


async def test_spans_are_identical_run_to_run_with_fixed_id_and_time_generators(nats_server):
    async def one_run() -> list[dict]:
        telemetry, exported = in_memory_telemetry("billing")
        got = []
        async with await TracedNats.connect(
            nats_server.url, service_name="billing", telemetry=telemetry
        ) as nc:

            async def handle(msg):
                got.append(msg)

            await nc.subscribe("orders.placed", queue="billing", cb=handle)
            await nc.publish("orders.placed", b"{}", workflow_id="order-1", message_id="msg-1")
            await nc.flush()
            while not got:
                await asyncio.sleep(0.01)
        spans = exported.get_finished_spans()
        return [{**span_dict(s), "start": s.start_time, "end": s.end_time} for s in spans]

    first, second = await one_run(), await one_run()
    assert first == second
    publish, process = first
    assert (publish["trace_id"], publish["span_id"]) == (f"{1:032x}", f"{1:016x}")
    assert process["parent_span_id"] == publish["span_id"]
    assert publish["start"] == START_NS
    assert [s["end"] - s["start"] for s in first] == [1_000_000, 1_000_000]


async def test_nats_options_that_configure_also_sets_are_the_users_and_spans_still_arrive(
    nats_server,
):
    errors = []

    async def on_error(exc):
        errors.append(exc)

    telemetry = configure(
        service_name="billing",
        nats_url=nats_server.url,
        install_global=False,
        schedule_delay=0.05,
        # the same options the application gives its own client and its Agent
        nats_options={"connect_timeout": 5, "name": "billing-spans", "error_cb": on_error},
    )
    try:
        telemetry.tracer.start_span("charge card").end()
        assert await asyncio.to_thread(telemetry.force_flush, timeout=20)
    finally:
        await asyncio.to_thread(telemetry.shutdown, timeout=2)
    assert telemetry.stats().spans_exported == 1


def test_a_nats_option_nats_connect_does_not_take_is_refused_at_once():
    with pytest.raises(ConfigurationError, match="conect_timeout") as caught:
        configure(
            service_name="billing",
            install_global=False,
            nats_options={"conect_timeout": 5},
        )
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ConfigurationError, match="conect_timeout"):
        Agent("billing", nats_options={"conect_timeout": 5})


def test_a_refused_nats_option_does_not_print_the_credentials_given_beside_it():
    with pytest.raises(ConfigurationError, match="conect_timeout") as caught:
        configure(
            service_name="billing",
            install_global=False,
            nats_options={"token": "s3cret-token", "conect_timeout": 5},
        )
    assert "s3cret-token" not in str(caught.value)


CONFIGURE_TWICE = textwrap.dedent(
    """
    import sys
    from opentelemetry import trace
    from instrumentation import configure

    url = sys.argv[1]
    first = configure(service_name="scorer", nats_url=url, schedule_delay=0.05)
    second = configure(service_name="scorer", nats_url=url, schedule_delay=0.05)
    assert second is first, "a second configure() made a second exporter"
    trace.get_tracer("app").start_span("score").end()
    assert first.force_flush(timeout=20)
    assert first.stats().spans_exported == 1, first.stats()
    first.shutdown()
    third = configure(service_name="scorer", nats_url=url, schedule_delay=0.05)
    assert third is not first, "a shut-down handle was returned"
    third.shutdown()
    print("ok")
    """
)


def test_configure_called_twice_for_a_service_returns_its_handle_not_a_second_exporter(
    nats_server,
):
    # a fresh interpreter: the global provider can be set only once per process
    result = subprocess.run(
        [sys.executable, "-c", CONFIGURE_TWICE, nats_server.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert "was already called in this process" in result.stderr


# An Agent made, then (per argv[2]) configure() or not, then a publish; "created"
# is printed to stderr between the Agent's creation and its first span.
CONFIGURE_AFTER_THE_AGENT = textwrap.dedent(
    """
    import asyncio, logging, sys
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from instrumentation import Agent, configure

    url, order = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.INFO)
    agents = [Agent("intake", nats_url=url), Agent("intake", nats_url=url)]
    print("created", file=sys.stderr, flush=True)
    backend = InMemorySpanExporter()
    if order != "never":
        configure(
            service_name="intake", export=False, install_global=order == "global",
            span_processors=[SimpleSpanProcessor(backend)],
        )

    async def main():
        for agent in agents:
            async with agent:
                await agent.start_workflow("shop.order.placed", {"order": 1})

    asyncio.run(main())
    print(len(backend.get_finished_spans()))
    """
)


def _publish_with_configure(url: str, order: str) -> tuple[str, int]:
    """The log after the Agents' creation, and the spans configure()'s provider got."""
    # a fresh interpreter: no global provider may have been installed
    result = subprocess.run(
        [sys.executable, "-c", CONFIGURE_AFTER_THE_AGENT, url, order],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    before, created, after = result.stderr.partition("created\n")
    assert created, result.stderr
    assert "not traced" not in before  # creating an Agent loses no span
    return after, int(result.stdout)


def test_an_agent_without_configure_says_its_spans_go_nowhere_when_it_makes_one(nats_server):
    log, _ = _publish_with_configure(nats_server.url, "never")
    assert log.count("intake is not traced") == 1  # once, for both Agents
    assert "its spans go nowhere" in log
    assert "configure(service_name='intake', nats_url=...)" in log


def test_configure_after_the_agent_is_not_told_spans_go_nowhere(nats_server):
    log, recorded = _publish_with_configure(nats_server.url, "global")
    assert "not traced" not in log
    assert recorded == 2  # both publishes reached configure()'s provider


def test_a_handle_the_agent_was_not_given_is_told_its_spans_go_nowhere(nats_server):
    # configure(install_global=False) installs no provider the Agent can reach
    log, recorded = _publish_with_configure(nats_server.url, "handle")
    assert log.count("intake is not traced") == 1
    assert "install_global=False and its handle not given to it" in log
    assert recorded == 0
