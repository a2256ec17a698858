"""The recruitment intake agents. Each reacts only to events; none calls another.

recruit.application.received ─► cv-parser ─► recruit.cv.parsed
recruit.cv.parsed ─► scorer ─► recruit.candidate.scored
recruit.candidate.scored ─► duplicate-check ─► recruit.candidate.checked
recruit.candidate.checked ─► router ─► recruit.candidate.routed   (the end)
"""

from __future__ import annotations

import random
from typing import Any

from instrumentation import Agent
from instrumentation.errors import BadMessageError
from samples.faults import Fault
from samples.llm import model_call
from samples.pipeline import Pipeline, StepContext
from samples.recruitment import domain

RECEIVED = "recruit.application.received"
PARSED = "recruit.cv.parsed"
SCORED = "recruit.candidate.scored"
CHECKED = "recruit.candidate.checked"
ROUTED = "recruit.candidate.routed"

CRM = domain.Crm.shipped()


def cv_parser(agent: Agent, ctx: StepContext) -> None:
    @agent.on(RECEIVED, queue="cv-parser")
    async def parse(event: Any) -> None:
        await ctx.before(event)
        try:
            candidate = domain.parse_cv(event.data)
        except domain.UnreadableCvError as e:
            # retrying cannot help: the Agent dead-letters a bad message at once
            raise BadMessageError(subject=event.subject, reason=str(e)) from e
        await ctx.emit(event, PARSED, {"candidate": candidate})


def scorer(agent: Agent, ctx: StepContext) -> None:
    @agent.on(PARSED, queue="scorer")
    async def score(event: Any) -> None:
        await ctx.before(event)
        candidate = event.data["candidate"]
        # where a real agent asks a language model for its judgement
        verdict = model_call(
            ctx.telemetry.tracer,
            model="keyword-scorer-v1",
            prompt=domain.scoring_prompt(candidate),
            answer=lambda: domain.score_candidate(candidate),
        )
        # the deviation: a "fast-track" shortcut that skips the duplicate check and routing
        await ctx.emit(
            event,
            SCORED,
            {"candidate": candidate, **verdict},
            deviation_subject=ROUTED,
        )


def duplicate_check(agent: Agent, ctx: StepContext) -> None:
    @agent.on(SCORED, queue="duplicate-check")
    async def check(event: Any) -> None:
        await ctx.before(event)
        known = CRM.find(event.data["candidate"]["email"])
        await ctx.emit(event, CHECKED, {**event.data, "duplicate": known is not None, "crm": known})


def router(agent: Agent, ctx: StepContext) -> None:
    @agent.on(CHECKED, queue="router")
    async def route(event: Any) -> None:
        await ctx.before(event)
        candidate, score, known = event.data["candidate"], event.data["score"], event.data["crm"]
        # where a real agent asks a language model to pick the recruiter
        assignment = model_call(
            ctx.telemetry.tracer,
            model="keyword-router-v1",
            prompt=domain.routing_prompt(candidate, score, known),
            answer=lambda: domain.route_candidate(candidate, score, known, CRM),
        )
        await ctx.emit(event, ROUTED, {"email": candidate["email"], "score": score, **assignment})


def new_application(rng: random.Random, fault: Fault | None) -> dict[str, Any]:
    if fault is not None and fault.name == "poison":
        return domain.make_unreadable_application(rng, CRM)
    return domain.make_application(rng, CRM)


PIPELINE = Pipeline(
    name="recruitment",
    entry_service="intake",
    start_subject=RECEIVED,
    services={
        "cv-parser": cv_parser,
        "scorer": scorer,
        "duplicate-check": duplicate_check,
        "router": router,
    },
    fault_steps={
        "drop": ["cv-parser", "scorer", "duplicate-check"],
        "hang": ["scorer", "duplicate-check", "router"],
        "duplicate": ["duplicate-check"],
        "slow": ["scorer", "router"],
        "crash": ["scorer", "router"],
        "poison": ["cv-parser"],
        "deviation": ["scorer"],
        # not a service a dropped message is bound for: a drop there would read as lost telemetry
        "lost_telemetry": ["cv-parser"],
        "consumer_down": ["scorer", "router"],
    },
    new_workflow=new_application,
)
