"""A handler that could never run is refused when it is registered, with what to write
instead, not found at the first event after every delivery failed."""

from __future__ import annotations

import functools

import pytest

from instrumentation import Agent, ConfigurationError
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry

FAST = {"fetch_timeout": 0.2, "heartbeat_interval": 5, "drain_timeout": 5}


def test_plain_function_handler_is_refused_at_registration():
    agent = Agent("extractor", handle_sigterm=False)
    calls = []

    with pytest.raises(ConfigurationError, match=r"async def handle\(event\)"):

        @agent.on("docs.received")
        def extract(event):  # forgot async: would run, then fail, on every delivery
            calls.append(event)

    assert calls == []


def test_handler_taking_other_arguments_than_the_event_is_refused():
    agent = Agent("extractor", handle_sigterm=False)

    with pytest.raises(ConfigurationError, match="takes one argument, the Event"):

        @agent.on("docs.received")
        async def extract(subject, data):
            pass


def test_async_generator_handler_is_refused():
    agent = Agent("extractor", handle_sigterm=False)

    with pytest.raises(ConfigurationError, match="async generator"):

        @agent.on("docs.received")
        async def extract(event):
            yield event


def test_queue_group_with_a_dot_is_refused_like_an_agent_name():
    agent = Agent("extractor", handle_sigterm=False)

    async def extract(event):
        pass

    with pytest.raises(ConfigurationError, match="without spaces, dots"):
        agent.on("docs.received", queue="docs.extractor")(extract)


async def test_wrapped_coroutine_and_async_callable_handlers_still_run(nats_server, run_agents):
    telemetry, _ = in_memory_telemetry("extractor")
    agent = Agent("extractor", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    seen = []

    def logged(fn):
        @functools.wraps(fn)
        def wrapper(event):  # a plain decorator returning the coroutine
            return fn(event)

        return wrapper

    @agent.on("docs.received")
    @logged
    async def extract(event):
        seen.append(("extract", event.data["doc"]))

    class Summarizer:
        async def __call__(self, event):
            seen.append(("summarize", event.data["doc"]))

    agent.on("docs.extracted", queue="summarizer")(Summarizer())

    await run_agents(agent)
    await agent.start_workflow("docs.received", {"doc": "a"})
    await agent.start_workflow("docs.extracted", {"doc": "b"})
    await eventually(lambda: sorted(seen) == [("extract", "a"), ("summarize", "b")])
    assert agent.counters.failed == 0
