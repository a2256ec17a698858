"""When a sample pipeline's consumer outages happen, so that each one's victims are certain.

An outage really stops a service for ``duration`` seconds. Its victims are the
workflows started while it is down: each stalls at the stopped consumer. Three
rules keep that ground truth exact:

- one outage at a time, and ``duration`` of recovery after each;
- an outage waits until no other fault has been injected for ``quiet`` seconds, and
  no other fault is injected meanwhile: a dropped message bound for a stopped
  service is a stall, not a drop, and a step stopped mid-way before its late ack is
  processed once, not twice;
- no workflow starts in the last ``tail`` seconds of an outage: it would only be
  late, not stalled, and its fate would be ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OutageSchedule:
    duration: float
    quiet: float
    tail: float
    down_until: dict[str, float] = field(default_factory=dict)
    pending: tuple[str, float] | None = None
    _quiet_from: float = 0.0
    _next_allowed: float = 0.0

    @property
    def holding_faults_back(self) -> bool:
        """While an outage waits or runs, new workflows get no other fault."""
        return self.pending is not None or bool(self.down_until)

    def fault_injected(self, *, now: float) -> None:
        self._quiet_from = max(self._quiet_from, now + self.quiet)

    def request(self, service: str, *, now: float) -> None:
        """A consumer outage was drawn: schedule it, unless one is already under way."""
        if self.holding_faults_back or now < self._next_allowed:
            return
        self.pending = (service, max(now, self._quiet_from))

    def due(self, *, now: float) -> str | None:
        """The service to stop now, if the pending outage's time has come."""
        if self.pending is None or now < self.pending[1]:
            return None
        service, _ = self.pending
        self.pending = None
        self.down_until[service] = now + self.duration
        self._next_allowed = now + 2 * self.duration
        return service

    def recovered(self, *, now: float) -> list[str]:
        """Services whose outage is over (to start again)."""
        over = [service for service, until in self.down_until.items() if now >= until]
        for service in over:
            del self.down_until[service]
        return over

    def in_tail(self, *, now: float) -> bool:
        return any(until - now < self.tail for until in self.down_until.values())
