"""Running a sample pipeline: its agents in one process, and a traffic generator.

Each service of a pipeline is its own ``Agent`` with its own telemetry handle, as
if it ran in its own container; they share a process only for convenience. The
generator starts workflows at a steady rate and, with a fault plan, decides
(by seed) which of them get which fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instrumentation import Agent, Telemetry, TracedNats, configure
from samples.faults import Fault, FaultPlan, GroundTruth, append_json_line
from samples.injector import STALE_QUEUE_SPANS, FaultInjector
from samples.outages import OutageSchedule

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 3.0
READY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class StepContext:
    """What a service's handlers get besides the event: faults, tracing, shared state."""

    service: str
    faults: FaultInjector
    telemetry: Telemetry
    bus: TracedNats
    state: dict[str, Any]

    async def before(self, event: Any) -> None:
        """Call first in a handler: carries out a fault planned for this step."""
        await self.faults.before(event, step=self.service, telemetry=self.telemetry)

    async def emit(
        self,
        event: Any,
        subject: str,
        data: Mapping[str, Any],
        *,
        deviation_subject: str | None = None,
    ) -> None:
        """Emit the step's result (``event.emit``), unless a fault changes its fate."""
        await self.faults.emit(
            event,
            subject,
            data,
            step=self.service,
            bus=self.bus,
            deviation_subject=deviation_subject,
        )


@dataclass(frozen=True)
class Pipeline:
    """A choreographed pipeline: its services and how to start one of its workflows."""

    name: str
    entry_service: str
    start_subject: str
    # service name -> a function registering that service's handlers on its agent
    services: Mapping[str, Callable[[Agent, StepContext], None]]
    # fault name -> the services it may hit
    fault_steps: Mapping[str, Sequence[str]]
    # the data of a new workflow; a poison fault gets data its step cannot process
    new_workflow: Callable[[random.Random, Fault | None], dict[str, Any]]


@dataclass(frozen=True)
class PipelineOptions:
    nats_url: str
    nats_options: Mapping[str, Any] = field(default_factory=dict)
    rate: float = 1.0
    duration: float | None = None
    fault_rates: Mapping[str, float] = field(default_factory=dict)
    # open with one of each fault (`--faults demo`: samples.faults.FaultPlan)
    showcase_faults: bool = False
    seed: int = 7
    step_deadline: float = 5.0
    ground_truth: Path | None = None
    started_log: Path | None = None

    @property
    def outage_seconds(self) -> float:
        """How long a consumer outage lasts: long enough for its workflows to stall."""
        return 2 * self.step_deadline + 2

    @property
    def slow_seconds(self) -> float:
        """How long a slow step takes: far past its usual milliseconds and its declared
        SLA (3 s in samples/choreography.yaml), yet within the deadline, with a margin
        for a loaded machine (a step that overran it would be hung, and rightly)."""
        return 0.7 * self.step_deadline

    @property
    def ack_wait(self) -> float:
        """JetStream redelivers a message not acked in this time: past the step deadline,
        so a hung handler is seen hung before its message goes to another attempt."""
        return 2 * self.step_deadline

    @property
    def max_processing(self) -> float:
        """How long a step keeps its message while it runs: ack_wait, so no keep-alive
        is sent. The sample's steps take milliseconds; those that run longer are the
        faults (a hung step, a duplicate's late finish), whose message JetStream
        delivers again after ack_wait, as it would a production step's past its
        max_processing."""
        return self.ack_wait

    @property
    def backoff(self) -> tuple[float, ...]:
        """Delays between the attempts of a failing step: it is dead-lettered within
        about 3 s. Each nak records its delay, so the correlator waits for the retry
        whatever the backoff, and a step that keeps failing is reported once, when it
        is dead-lettered."""
        return (0.2, 0.5, 1.0, 1.0)

    @property
    def heartbeat_interval(self) -> float:
        """Often enough that a stopped service is noticed well within a deadline."""
        return min(1.0, self.step_deadline / 4)


class PipelineRunner:
    """Runs a pipeline's agents, and generates traffic into it."""

    def __init__(self, pipeline: Pipeline, options: PipelineOptions) -> None:
        self.pipeline = pipeline
        self.options = options
        self.faults = FaultInjector(
            truth=GroundTruth(options.ground_truth, pipeline=pipeline.name),
            slow_seconds=options.slow_seconds,
            ack_wait=options.ack_wait,
        )
        self.plan = FaultPlan(
            rates=options.fault_rates,
            steps=pipeline.fault_steps,
            seed=options.seed,
            showcase=options.showcase_faults,
        )
        self.telemetry: dict[str, Telemetry] = {}
        self.buses: dict[str, TracedNats] = {}
        self.agents: dict[str, Agent] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.state: dict[str, dict[str, Any]] = {}
        self.outages = OutageSchedule(
            duration=options.outage_seconds,
            # long enough for the faults in flight to play out: a duplicate's late
            # ack (past ack_wait), a drop's deadline, a slow step
            quiet=options.ack_wait + 3,
            tail=options.step_deadline + 1,
        )
        self.started: list[str] = []

    async def run(self) -> None:
        """Start every agent, generate traffic for the duration, then keep serving."""
        try:
            for service in (self.pipeline.entry_service, *self.pipeline.services):
                await self._start_agent(service)
            # the consumers (and the stream) exist before the first workflow starts
            for service in self.tasks:
                await self.agents[service].wait_ready(timeout=READY_TIMEOUT_SECONDS)
            await self.generate()
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            await self.shutdown()

    async def generate(self) -> None:
        rng = random.Random(self.options.seed)
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.options.rate
        began = next_at = loop.time()
        while self.options.duration is None or loop.time() - began < self.options.duration:
            await self._apply_outages()
            if not self.outages.in_tail(now=time.monotonic()):
                await self._start_workflow(rng)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        log.info("%s: traffic done, %d workflows started", self.pipeline.name, len(self.started))
        while self.outages.holding_faults_back:
            await asyncio.sleep(0.2)
            self.outages.pending = None  # no new outage once the traffic is over
            await self._apply_outages()

    async def _start_workflow(self, rng: random.Random) -> None:
        workflow_id = uuid.uuid4().hex
        fault = self.plan.draw()
        now = time.monotonic()
        if fault is not None and fault.name == "consumer_down":
            self.outages.request(fault.step, now=now)
            await self._apply_outages()
            fault = None
        if self.outages.down_until:
            # every workflow started during an outage stalls at the stopped consumer
            for service in self.outages.down_until:
                self.faults.record(workflow_id, Fault(name="consumer_down", step=service))
            fault = None
        elif self.outages.pending is not None:
            fault = None  # held back: the coming outage's victims must be certain
        if fault is not None:
            self.outages.fault_injected(now=now)
            if fault.name == "poison":
                self.faults.record(workflow_id, fault, subject=self.pipeline.start_subject)
            else:
                self.faults.plan(workflow_id, fault)
        data = self.pipeline.new_workflow(rng, fault)
        entry = self.agents[self.pipeline.entry_service]
        await entry.start_workflow(self.pipeline.start_subject, data, workflow_id=workflow_id)
        self.started.append(workflow_id)
        if self.options.started_log is not None:
            append_json_line(
                self.options.started_log,
                {"workflow_id": workflow_id, "pipeline": self.pipeline.name, "at": time.time()},
            )

    async def shutdown(self) -> None:
        # asked before anything closes: a connection this pipeline closed is no outage
        nats_gone = bool(self.buses) and not any(b.nc.is_connected for b in self.buses.values())
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            # a hung handler never finishes draining; do not wait for it forever
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
        with contextlib.suppress(Exception):
            await self.agents[self.pipeline.entry_service].close()
        for bus in self.buses.values():
            with contextlib.suppress(Exception):
                await bus.close()
        if nats_gone:
            await self._stop_telemetry_without_nats()
            return
        for telemetry in self.telemetry.values():
            # shutdown blocks while it flushes: keep the event loop free meanwhile
            await asyncio.to_thread(telemetry.shutdown, timeout=SHUTDOWN_GRACE_SECONDS)

    async def _stop_telemetry_without_nats(self) -> None:
        """NATS went away before the pipeline stopped: waiting for it to take the spans
        cannot help, and each service saying so would fill the log. One line says it."""
        telemetries = list(self.telemetry.values())
        dropped_before = sum(_dropped(t) for t in telemetries)
        await asyncio.gather(
            *(asyncio.to_thread(t.shutdown, timeout=0, report_loss=False) for t in telemetries)
        )
        log.warning(
            "%s: NATS at %s was gone before the pipeline stopped; %d spans not yet exported "
            "are lost",
            self.pipeline.name,
            self.options.nats_url,
            sum(_dropped(t) for t in telemetries) - dropped_before,
        )

    async def _start_agent(self, service: str) -> None:
        telemetry = self.telemetry.get(service)
        if telemetry is None:
            telemetry = configure(
                service_name=service,
                nats_url=self.options.nats_url,
                nats_options=dict(self.options.nats_options),
                install_global=False,
                max_queue_spans=STALE_QUEUE_SPANS,
            )
            self.telemetry[service] = telemetry
            self.buses[service] = await TracedNats.connect(
                self.options.nats_url,
                service_name=service,
                telemetry=telemetry,
                **self.options.nats_options,
            )
        agent = Agent(
            service,
            nats_url=self.options.nats_url,
            nats_options=dict(self.options.nats_options),
            telemetry=telemetry,
            ack_wait=self.options.ack_wait,
            max_processing=self.options.max_processing,
            backoff=self.options.backoff,
            heartbeat_interval=self.options.heartbeat_interval,
            drain_timeout=SHUTDOWN_GRACE_SECONDS,
            audit=True,
        )
        register = self.pipeline.services.get(service)
        if register is not None:
            context = StepContext(
                service=service,
                faults=self.faults,
                telemetry=telemetry,
                bus=self.buses[service],
                state=self.state.setdefault(service, {}),
            )
            register(agent, context)
        self.agents[service] = agent
        if register is None:
            await agent.connect()  # the entry service only starts workflows
            return
        self.tasks[service] = asyncio.create_task(agent.run(), name=f"agent {service}")

    async def _apply_outages(self) -> None:
        """Stop a service whose outage is due; start again those whose outage is over."""
        now = time.monotonic()
        for service in self.outages.recovered(now=now):
            log.info("consumer outage over: starting %s again", service)
            await self._start_agent(service)
        service = self.outages.due(now=now)
        if service is not None:
            # a consumer outage: the service really stops consuming (and heartbeating)
            log.info("consumer outage: stopping %s for %.0f s", service, self.outages.duration)
            task = self.tasks.pop(service)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task], timeout=SHUTDOWN_GRACE_SECONDS)


def _dropped(telemetry: Telemetry) -> int:
    stats = telemetry.stats()
    return stats.spans_dropped if stats is not None else 0
