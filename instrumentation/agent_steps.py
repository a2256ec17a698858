"""Where an Agent's steps run: long-lived worker tasks, not a task per event.

Creating, scheduling and finishing a task per event cost about 3 µs, as much as
a span. Here up to ``max_workers`` workers take delivered messages from one
queue. A worker whose step ends without waiting takes the next message itself;
when a step waits (for NATS, a model, a sleep), its worker first wakes another
for the messages still queued, so steps run concurrently up to the limit, as
they would in tasks of their own.

Each step runs inside its worker's task, so ``asyncio.current_task()`` and
``asyncio.timeout()`` behave as in any task. One difference: a context variable
that a handler sets and does not reset is still set in the next step of that
worker (choreoscope's own are reset after every step).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from instrumentation.agent_delivery import Handler
from instrumentation.heartbeat import AgentCounters

log = logging.getLogger("instrumentation.agent")

Step = Callable[[Handler, Any], Coroutine[Any, Any, None]]


@types.coroutine
def _noticing_first_wait(
    step: Coroutine[Any, Any, None], on_wait: Callable[[], None]
) -> Generator[Any, Any, None]:
    """Run ``step`` in the current task as ``await step`` would, calling ``on_wait``
    when it first waits (before the task suspends)."""
    try:
        waiting_on = step.send(None)
    except StopIteration:
        return
    on_wait()
    while True:  # hand what it waits on to the task, and the outcome back to it
        try:
            yield waiting_on
        except GeneratorExit:
            step.close()
            raise
        except BaseException as exc:  # cancellation: raised where the step waits
            try:
                waiting_on = step.throw(exc)
            except StopIteration:
                return
            continue
        break
    yield from step  # resumes it (the task only sends after what it waited on is done)


class StepRunner:
    """Runs each delivered message's step, at most ``max_workers`` at once."""

    def __init__(self, *, step: Step, max_workers: int, counters: AgentCounters) -> None:
        self._step = step
        self._max_workers = max_workers
        self._counters = counters
        self._queue: collections.deque[tuple[Handler, Any]] = collections.deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._idle: list[asyncio.Future[None]] = []
        self._starting = 0  # workers woken or created that have not taken a message yet
        self._stopping = False
        self.slot_freed = asyncio.Event()  # a step ended
        self._quiet = asyncio.Event()  # nothing queued or running
        self._quiet.set()

    def submit(self, handler: Handler, msg: Any) -> None:
        self._counters.received += 1
        self._counters.in_flight += 1
        self._quiet.clear()
        self._queue.append((handler, msg))
        if not self._starting:  # a worker on its way takes this one too
            self._start_worker()

    async def drain(self, *, agent: str, timeout: float, redelivered: bool) -> None:
        """Let the steps running end, up to ``timeout`` s, and say so; those still
        running then are cancelled (``cancel``), which is said too: a step cut short
        is redelivered (JetStream) or lost (core NATS)."""
        if not self._counters.in_flight:
            return
        log.info("agent %s draining %d in-flight events", agent, self._counters.in_flight)
        if not await self.wait_quiet(timeout):
            log.warning(
                "agent %s: %d in-flight events did not end within its drain_timeout of %gs: "
                "cancelled (their spans say so); %s",
                agent, self._counters.in_flight, timeout,
                "JetStream delivers them again" if redelivered
                else "on core NATS they are not delivered again",
            )  # fmt: skip

    async def wait_quiet(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until every submitted step has ended."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), timeout)
        return self._quiet.is_set()

    async def cancel(self) -> None:
        """Cancel the running steps where they wait (they record it on their spans)
        and stop every worker; messages still queued are not handled."""
        self._stopping = True
        self._discard_queued()
        workers = set(self._workers)
        for worker in workers:
            worker.cancel()
        try:
            if workers:
                await asyncio.wait(workers, timeout=1)
        finally:
            self._discard_queued()
            self._idle.clear()
            self._starting = 0
            self._stopping = False

    def _discard_queued(self) -> None:
        for _ in range(len(self._queue)):
            self._queue.popleft()
            self._step_ended()

    def _start_worker(self) -> None:
        """Have one more worker take from the queue: an idle one, else a new one."""
        while self._idle:
            waiter = self._idle.pop()
            if not waiter.done():
                waiter.set_result(None)
                self._starting += 1
                return
        if len(self._workers) < self._max_workers:
            self._starting += 1
            worker = asyncio.get_running_loop().create_task(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    def _step_waits(self) -> None:
        if self._queue and not self._starting:
            self._start_worker()

    def _step_ended(self) -> None:
        self._counters.in_flight -= 1
        self.slot_freed.set()
        if self._counters.in_flight <= 0:
            self._quiet.set()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        try:
            while True:
                self._starting -= 1
                while queue:
                    handler, msg = queue.popleft()
                    try:
                        await _noticing_first_wait(self._step(handler, msg), self._step_waits)
                    finally:
                        self._step_ended()
                waiter: asyncio.Future[None] = loop.create_future()
                self._idle.append(waiter)
                await waiter
        finally:
            if queue and not self._stopping:  # ended by a step's own cancellation
                self._start_worker()
