"""A scenario builder: real agents (the instrumentation package) over a real
nats-server, spans ingested by a real collector, every fault kind of the issue
injected with known ground truth.

The pipeline: intake starts a workflow on ``recruit.application.received``;
parser emits ``recruit.cv.parsed``; scorer emits ``recruit.candidate.scored``,
which notifier and archiver both handle (a fan-out). Faults are carried out for
real inside the handlers, one per workflow:

    drop            parser publishes its result on core NATS with a stale
                    Nats-Expected-Stream header: JetStream refuses it, nobody gets it
    hang            notifier's handler never returns
    poison          scorer's handler raises on every delivery until the message is
                    dead-lettered
    duplicate       scorer acks after its ack deadline: JetStream redelivers and the
                    message is processed twice
    deviation       parser emits `recruit.offer.sent`, an event the choreography
                    never had
    lost_telemetry  parser's telemetry path to NATS stalls (a gate closes between
                    its span exporter and the server) while the step traces a burst:
                    its exporter's queue overflows and the step's spans are dropped,
                    counted in its heartbeats
    consumer_down   archiver is stopped (its heartbeats stop) before the workflow
                    reaches it
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instrumentation import Agent, TracedNats, configure
from instrumentation.telemetry import Telemetry
from tests.correlator.tcp_gate import TcpGate

RECEIVED = "recruit.application.received"
PARSED = "recruit.cv.parsed"
SCORED = "recruit.candidate.scored"
OFF_MODEL = "recruit.offer.sent"
STREAM = "SCENARIO_EVENTS"

# fault -> (expected anomaly kind, the step: the subject the workflow waits on)
EXPECTED = {
    "drop": ("dropped", PARSED),
    "hang": ("hung", SCORED),
    "poison": ("dead_lettered", PARSED),
    "duplicate": ("duplicate", PARSED),
    "deviation": ("deviation", OFF_MODEL),
    "lost_telemetry": ("telemetry_gap", PARSED),
    "consumer_down": ("stalled", SCORED),
}


@dataclass
class Scenario:
    nats_url: str
    heartbeat_interval: float = 0.3
    faults: dict[str, str] = field(default_factory=dict)  # workflow id -> fault
    telemetry: dict[str, Telemetry] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _buses: list[TracedNats] = field(default_factory=list)
    _hang_forever: asyncio.Event = field(default_factory=asyncio.Event)
    _count: int = 0
    telemetry_gate: TcpGate | None = None

    def truth(self) -> set[tuple[str, str, str]]:
        """``(kind, workflow_id, step)`` of every fault injected."""
        return {(*EXPECTED[f][:1], wf, EXPECTED[f][1]) for wf, f in self.faults.items()}

    def _agent(self, name: str, **options: Any) -> Agent:
        self.telemetry[name] = configure(
            service_name=name,
            nats_url=options.pop("export_url", self.nats_url),
            install_global=False,
            schedule_delay=0.1,
            max_queue_spans=options.pop("max_queue_spans", 2048),
            max_batch_spans=options.pop("max_batch_spans", 64),
        )
        agent = Agent(
            name,
            nats_url=self.nats_url,
            telemetry=self.telemetry[name],
            stream=STREAM,
            heartbeat_interval=self.heartbeat_interval,
            drain_timeout=0.5,
            fetch_timeout=0.2,
            **options,
        )
        self.agents[name] = agent
        return agent

    async def start(self) -> None:
        intake = self._agent("intake")
        host, port = self.nats_url.removeprefix("nats://").split(":")
        self.telemetry_gate = TcpGate(target_host=host, target_port=int(port))
        await self.telemetry_gate.start()
        parser = self._agent("parser", max_queue_spans=64, export_url=self.telemetry_gate.url)
        # max_processing no longer than ack_wait: no keep-alive, so the duplicate
        # fault's step, still running past it, has its message redelivered
        scorer = self._agent(
            "scorer", ack_wait=1.0, max_processing=1.0, max_deliveries=2, backoff=(0.2,)
        )
        notifier = self._agent("notifier")
        archiver = self._agent("archiver")
        bus = await TracedNats.connect(
            self.nats_url, service_name="parser", telemetry=self.telemetry["parser"]
        )
        self._buses.append(bus)

        @parser.on(RECEIVED)
        async def parse(event: Any) -> None:
            fault = self.faults.get(event.workflow_id)
            if fault == "deviation":
                await event.emit(OFF_MODEL, {"offer": True})
                return
            if fault == "lost_telemetry":
                self.telemetry_gate.close_gate()  # the telemetry path stalls
                tracer = self.telemetry["parser"].tracer
                for i in range(400):  # a model call traced token by token
                    tracer.start_span(f"llm token {i}").end()
                    if i == 100:
                        await asyncio.sleep(0.05)  # the exporter's batch is stuck in flight
                asyncio.get_running_loop().call_later(0.3, self.telemetry_gate.open_gate)
            if fault == "drop":
                await bus.publish(
                    PARSED,
                    json.dumps({"cv": "parsed"}).encode(),
                    headers={"Nats-Expected-Stream": STREAM + "_V0"},
                    workflow_id=event.workflow_id,
                )
                return
            await event.emit(PARSED, {"cv": "parsed"})

        @scorer.on(PARSED)
        async def score(event: Any) -> None:
            fault = self.faults.get(event.workflow_id)
            if fault == "poison":
                raise ValueError("unreadable CV")
            await event.emit(SCORED, {"score": 0.8}, message_id=f"{event.message_id}>scored")
            if fault == "duplicate" and event.attempt == 1:
                await asyncio.sleep(1.6)  # past max_processing: JetStream redelivers

        @notifier.on(SCORED)
        async def notify(event: Any) -> None:
            if self.faults.get(event.workflow_id) == "hang":
                await self._hang_forever.wait()

        @archiver.on(SCORED)
        async def archive(event: Any) -> None:
            pass

        for name, agent in self.agents.items():
            if name != "intake":
                self.tasks[name] = asyncio.create_task(agent.run())
        for name, agent in self.agents.items():
            if name != "intake":
                await agent.wait_ready(timeout=20)
        await intake.connect()  # intake only publishes: it has nothing to run

    async def run_workflow(self, fault: str | None = None) -> str:
        self._count += 1
        workflow_id = f"wf-{self._count:03d}-{fault or 'healthy'}"
        if fault:
            self.faults[workflow_id] = fault
        await self.agents["intake"].start_workflow(
            RECEIVED, {"n": self._count}, workflow_id=workflow_id
        )
        return workflow_id

    async def stop_service(self, name: str) -> None:
        """Stop a service for good: it consumes nothing more and its heartbeats stop."""
        self.agents[name].stop()
        await asyncio.wait_for(self.tasks.pop(name), 20)

    async def stop(self) -> None:
        self._hang_forever.set()
        for name in list(self.tasks):
            await self.stop_service(name)
        await self.agents["intake"].close()
        for bus in self._buses:
            await bus.close()
        for telemetry in self.telemetry.values():
            telemetry.shutdown(timeout=5)
        await self.telemetry_gate.stop()


@contextlib.asynccontextmanager
async def running_scenario(nats_url: str, **options: Any) -> AsyncIterator[Scenario]:
    scenario = Scenario(nats_url=nats_url, **options)
    await scenario.start()
    try:
        yield scenario
    finally:
        await scenario.stop()


def flush_all(scenario: Scenario) -> None:
    for telemetry in scenario.telemetry.values():
        telemetry.force_flush(timeout=5)


def data_dir_of(layout: Any) -> Path:
    return Path(layout.root)
