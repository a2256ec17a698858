"""The orders sample's fan-in, the pattern users copy: an order ships exactly once,
even when publishing the shipment fails and JetStream redelivers the last result."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from samples.orders.agents import SHIPPED, shipping
from samples.orders.domain import FAN_IN_SUBJECTS


class PublishTimeoutError(Exception):
    """What a publish to JetStream raises while the stream has no leader."""


class ShippingStep:
    """The shipping service's handlers, as its Agent would call them, with an emit
    that can fail once, as a publish can."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.state: dict[str, Any] = {}
        self.emitted: list[tuple[str, str]] = []
        self.failures_left = 0

    def on(self, subject: str, *, queue: str) -> Any:
        return lambda handler: self.handlers.setdefault(subject, handler)

    async def before(self, event: Any) -> None:
        return None

    async def emit(self, event: Any, subject: str, data: Any) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise PublishTimeoutError("nats: timeout")
        self.emitted.append((event.workflow_id, subject))

    async def deliver(self, subject: str) -> None:
        event = SimpleNamespace(workflow_id="order-1", subject=subject, data={"from": subject})
        await self.handlers[subject](event)


async def test_an_order_whose_shipment_failed_to_publish_ships_when_redelivered() -> None:
    step = ShippingStep()
    shipping(step, step)  # the agent and the step context in one
    *first, last = FAN_IN_SUBJECTS
    for subject in first:
        await step.deliver(subject)
    step.failures_left = 1
    with pytest.raises(PublishTimeoutError):
        await step.deliver(last)  # the Agent naks it; JetStream delivers it again
    await step.deliver(last)
    # the fan-in forgot the first two results before the shipment was out, so the
    # redelivered third found one result of three and the order never shipped
    assert step.emitted == [("order-1", SHIPPED)]
