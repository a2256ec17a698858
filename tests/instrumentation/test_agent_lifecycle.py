"""Agent lifecycle: heartbeats, graceful drain, NATS absent at start or lost mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys

import pytest

from choreoscope.nats_server import EmbeddedNats
from instrumentation import Agent, configure, wire
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry, spans_named

FAST = {"fetch_timeout": 0.2, "drain_timeout": 5}


async def test_heartbeats_carry_the_counters_at_the_configured_interval(
    nats_server, run_agents, raw_nats
):
    telemetry = configure(
        service_name="scorer", nats_url=nats_server.url, install_global=False, schedule_delay=0.05
    )
    beats: list[dict] = []

    async def collect(msg) -> None:
        assert msg.subject == wire.HEARTBEAT_SUBJECT_PREFIX + "scorer"
        beats.append(json.loads(msg.data))

    sub = await raw_nats.subscribe("choreo.heartbeat.>", cb=collect)
    agent = Agent(
        "scorer", nats_url=nats_server.url, telemetry=telemetry, heartbeat_interval=0.1, **FAST
    )

    @agent.on("recruit.cv.parsed")
    async def score(event):
        if event.data["fail"]:
            raise RuntimeError("boom")

    try:
        await run_agents(agent)
        await agent.start_workflow("recruit.cv.parsed", {"fail": False})
        await eventually(
            lambda: (
                len(beats) >= 3 and beats[-1]["processed"] == 1 and beats[-1]["spans_exported"] > 0
            )
        )
    finally:
        await sub.unsubscribe()
        await asyncio.to_thread(telemetry.shutdown)
    beat = beats[-1]
    assert set(beat) == {
        "service", "instance", "at", "interval_s", "received", "processed", "failed",
        "dead_lettered", "spans_exported", "spans_dropped", "in_flight", "stopping",
    }  # fmt: skip
    assert beat["stopping"] is False
    assert beat["service"] == "scorer"
    assert beat["interval_s"] == 0.1
    assert beat["received"] == 1 and beat["failed"] == 0 and beat["spans_dropped"] == 0
    assert len({b["instance"] for b in beats}) == 1


async def test_cancelling_run_lets_in_flight_steps_finish_and_ack(nats_server, raw_nats):
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=nats_server.url, telemetry=telemetry, **FAST)
    started = asyncio.Event()
    finished = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        started.set()
        await asyncio.sleep(0.5)
        finished.append(event.data)

    run = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=10)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    await asyncio.wait_for(started.wait(), 10)
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    assert run.cancelled()
    assert finished == [{"cv": 1}]
    assert len(spans_named(spans, "ack recruit.cv.parsed")) == 1
    js = raw_nats.jetstream()
    for _ in range(100):  # the ack is a publish: the server applies it a moment later
        info = await js.consumer_info(wire.EVENTS_STREAM, "scorer--recruit_cv_parsed")
        if info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.05)
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_step_still_running_past_the_drain_timeout_is_cancelled_and_said_so(
    nats_server, caplog
):
    # the process stopped after drain_timeout without a word about the step it cut short
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=nats_server.url, telemetry=telemetry, fetch_timeout=0.2,
                  drain_timeout=0.3)  # fmt: skip
    started = asyncio.Event()

    @agent.on("recruit.cv.parsed")
    async def score(event):
        started.set()
        await asyncio.sleep(30)

    caplog.set_level(logging.INFO, logger="instrumentation.agent")
    run = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=10)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    await asyncio.wait_for(started.wait(), 10)
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    assert (
        "agent scorer: 1 in-flight events did not end within its drain_timeout of 0.3s: "
        "cancelled (their spans say so); JetStream delivers them again"
    ) in caplog.text
    (process,) = spans_named(spans, "process recruit.cv.parsed")
    assert process["status"] == "ERROR"  # "cancelled: the agent stopped mid-step"


async def test_agent_started_before_nats_connects_when_it_comes_up(tmp_path):
    server = EmbeddedNats(store_dir=tmp_path / "nats")
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=server.url, telemetry=telemetry, **FAST)
    handled = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        handled.append(event.data)

    run = asyncio.create_task(agent.run())
    await asyncio.sleep(0.5)  # NATS is not there yet: the agent waits, it does not crash
    assert not run.done()
    with server:
        await agent.wait_ready(timeout=15)
        await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
        await eventually(lambda: handled == [{"cv": 1}])
        agent.stop()
        await asyncio.wait_for(run, 15)


@pytest.mark.parametrize("delivery", ["jetstream", "core"])
async def test_agent_keeps_working_across_a_nats_restart(nats_server, run_agents, delivery):
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer", delivery=delivery, nats_url=nats_server.url, telemetry=telemetry, **FAST
    )
    handled = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        handled.append(event.data["cv"])

    await run_agents(agent)
    await agent.start_workflow("recruit.cv.parsed", {"cv": 1})
    await eventually(lambda: handled == [1])
    await asyncio.to_thread(nats_server.restart)

    async def publish_after_reconnect():
        while True:
            try:
                return await agent.start_workflow("recruit.cv.parsed", {"cv": 2})
            except Exception:
                await asyncio.sleep(0.2)

    await asyncio.wait_for(publish_after_reconnect(), 20)
    await eventually(lambda: 2 in handled, timeout=20)


async def test_an_outage_is_logged_once_when_it_starts_and_once_with_its_length(
    nats_server, run_agents, caplog
):
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent("scorer", delivery="core", nats_url=nats_server.url, telemetry=telemetry, **FAST)

    @agent.on("recruit.cv.parsed")
    async def score(event):
        pass

    await run_agents(agent)
    caplog.set_level(logging.INFO, logger="instrumentation.agent")
    await asyncio.to_thread(nats_server.stop)
    await asyncio.sleep(2.5)  # reconnect attempts every 0.5 s all fail meanwhile
    await asyncio.to_thread(nats_server.start)
    await eventually(lambda: "reconnected to NATS after" in caplog.text, timeout=20)

    said = [r.getMessage() for r in caplog.records if r.name == "instrumentation.agent"]
    assert [m for m in said if "disconnected from NATS" in m] == [
        f"agent scorer disconnected from NATS at {nats_server.url}: reconnecting"
    ]
    assert len([m for m in said if "reconnected to NATS after" in m]) == 1


async def test_events_published_after_an_instance_stops_go_to_the_next_one(nats_server):
    # a long-lived pull request of the stopped instance must not swallow them
    handled: list[str] = []

    def make_instance(label: str) -> Agent:
        telemetry, _ = in_memory_telemetry("scorer")
        agent = Agent(
            "scorer", nats_url=nats_server.url, telemetry=telemetry, fetch_timeout=20,
            ack_wait=30, drain_timeout=5,
        )  # fmt: skip

        @agent.on("recruit.cv.parsed")
        async def score(event):
            handled.append(label)

        return agent

    first = make_instance("first")
    run = asyncio.create_task(first.run())
    await first.wait_ready(timeout=10)
    first.stop()
    await asyncio.wait_for(run, 10)

    second = make_instance("second")
    run = asyncio.create_task(second.run())
    await second.wait_ready(timeout=10)
    await second.start_workflow("recruit.cv.parsed", {"cv": 1})
    await eventually(lambda: handled == ["second"], timeout=10)
    second.stop()
    await asyncio.wait_for(run, 10)


AGENT_SCRIPT = """
import asyncio, pathlib, sys
from instrumentation import Agent, configure

url, done = sys.argv[1], pathlib.Path(sys.argv[2])
configure(service_name="slow", nats_url=url)
agent = Agent("slow", nats_url=url, fetch_timeout=0.2, drain_timeout=10)


@agent.on("slow.step")
async def step(event):
    print("started", flush=True)
    await asyncio.sleep(1.0)
    done.write_text("finished")


async def main():
    run = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=10)
    await agent.start_workflow("slow.step", {})
    await run


asyncio.run(main())  # as the README runs an Agent
"""


async def test_sigterm_lets_the_step_in_flight_finish_before_the_process_ends(
    nats_server, tmp_path
):
    # `docker stop` and Kubernetes stop with SIGTERM, which killed the process at once:
    # the step mid-flight died, its spans were lost, and its message came back only
    # after ack_wait
    script, done = tmp_path / "slow_agent.py", tmp_path / "done"
    script.write_text(AGENT_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), nats_server.url, str(done),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"started\n"
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode()
    assert code == 0, stderr
    assert done.read_text() == "finished"


async def test_an_agent_that_stops_says_so_in_its_last_heartbeat(nats_server, raw_nats):
    # it fell silent like a crashed one, and a service stopped on purpose was reported
    # as a telemetry gap ("went silent")
    telemetry, _ = in_memory_telemetry("scorer")
    beats: list[dict] = []

    async def collect(msg) -> None:
        beats.append(json.loads(msg.data))

    sub = await raw_nats.subscribe("choreo.heartbeat.scorer", cb=collect)
    agent = Agent(
        "scorer", nats_url=nats_server.url, telemetry=telemetry, heartbeat_interval=0.1, **FAST
    )

    @agent.on("recruit.cv.parsed")
    async def score(event):
        pass

    run = asyncio.create_task(agent.run())
    await agent.wait_ready(timeout=10)
    await eventually(lambda: len(beats) >= 2)
    agent.stop()
    await asyncio.wait_for(run, 20)
    await raw_nats.flush()
    await eventually(lambda: beats[-1]["stopping"])
    await sub.unsubscribe()
    assert [b["stopping"] for b in beats].count(True) == 1
