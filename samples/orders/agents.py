"""The order agents: fan-out to three services in parallel, fan-in at shipping.

orders.created ─┬► inventory ─► orders.inventory.reserved ─┐
                ├► fraud     ─► orders.fraud.scored       ─┼► shipping ─► orders.shipped
                └► payment   ─► orders.payment.authorized ─┘   (waits for all three)
"""

from __future__ import annotations

import random
from typing import Any

from instrumentation import Agent
from instrumentation.errors import BadMessageError
from samples.faults import Fault
from samples.llm import model_call
from samples.orders import domain
from samples.pipeline import Pipeline, StepContext

CREATED = "orders.created"
RESERVED, FRAUD_SCORED, AUTHORIZED = domain.FAN_IN_SUBJECTS
SHIPPED = "orders.shipped"


def inventory(agent: Agent, ctx: StepContext) -> None:
    @agent.on(CREATED, queue="inventory")
    async def reserve(event: Any) -> None:
        await ctx.before(event)
        await ctx.emit(event, RESERVED, domain.reserve_stock(event.data))


def fraud(agent: Agent, ctx: StepContext) -> None:
    @agent.on(CREATED, queue="fraud")
    async def score(event: Any) -> None:
        await ctx.before(event)
        order = event.data
        # where a real agent asks a model for a fraud judgement
        verdict = model_call(
            ctx.telemetry.tracer,
            model="rule-fraud-v1",
            prompt=domain.fraud_prompt(order),
            answer=lambda: domain.score_fraud(order),
        )
        await ctx.emit(event, FRAUD_SCORED, verdict)


def payment(agent: Agent, ctx: StepContext) -> None:
    @agent.on(CREATED, queue="payment")
    async def authorize(event: Any) -> None:
        await ctx.before(event)
        try:
            result = domain.authorize_payment(event.data)
        except domain.UnsupportedCurrencyError as e:
            # retrying cannot help: the Agent dead-letters a bad message at once
            raise BadMessageError(subject=event.subject, reason=str(e)) from e
        await ctx.emit(event, AUTHORIZED, result)


def shipping(agent: Agent, ctx: StepContext) -> None:
    fan_in = ctx.state.setdefault("fan_in", domain.FanIn())

    async def collect(event: Any) -> None:
        await ctx.before(event)
        results = fan_in.add(event.workflow_id, event.subject, event.data)
        if results is None:
            return
        try:
            await ctx.emit(event, SHIPPED, {"shipped": True, "results": results})
        except Exception:
            # not shipped: keep the results, so that this event's redelivery ships it
            fan_in.put_back(event.workflow_id, results)
            raise

    for subject in domain.FAN_IN_SUBJECTS:
        agent.on(subject, queue="shipping")(collect)


def new_order(rng: random.Random, fault: Fault | None) -> dict[str, Any]:
    if fault is not None and fault.name == "poison":
        return domain.make_unpayable_order(rng)
    return domain.make_order(rng)


PIPELINE = Pipeline(
    name="orders",
    entry_service="storefront",
    start_subject=CREATED,
    services={"inventory": inventory, "fraud": fraud, "payment": payment, "shipping": shipping},
    fault_steps={
        "drop": ["inventory", "payment"],
        "hang": ["inventory", "fraud", "payment"],
        "duplicate": ["inventory"],
        "slow": ["inventory", "fraud"],
        "crash": ["fraud"],
        "poison": ["payment"],
        "consumer_down": ["inventory", "payment"],
        # not a service a dropped message is bound for: a drop there would read as lost telemetry
        "lost_telemetry": ["fraud"],
    },
    new_workflow=new_order,
)
