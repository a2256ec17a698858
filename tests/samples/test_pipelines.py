"""The sample pipelines really flow over a real nats-server, and their faults really happen."""

from __future__ import annotations

from pathlib import Path

from choreoscope.nats_server import EmbeddedNats
from instrumentation import wire
from samples.faults import read_ground_truth
from samples.orders.agents import PIPELINE as ORDERS
from samples.pipeline import PipelineOptions
from samples.recruitment.agents import PIPELINE as RECRUITMENT
from tests.samples.pipeline_harness import by_workflow, running, stream_events, wait_for


async def test_every_application_ends_with_a_routed_candidate(nats_server: EmbeddedNats) -> None:
    options = PipelineOptions(nats_url=nats_server.url, rate=20, duration=0.5)
    async with running(RECRUITMENT, options) as runner:

        async def all_routed() -> bool:
            events = await stream_events(nats_server.url)
            routed = {e.workflow_id for e in events if e.subject == "recruit.candidate.routed"}
            return len(runner.started) >= 5 and routed >= set(runner.started)

        await wait_for(all_routed, timeout=90, what="every application to be routed")
    workflows = by_workflow(await stream_events(nats_server.url))
    for workflow_id in runner.started:
        subjects = [e.subject for e in workflows[workflow_id]]
        assert subjects == [
            "recruit.application.received",
            "recruit.cv.parsed",
            "recruit.candidate.scored",
            "recruit.candidate.checked",
            "recruit.candidate.routed",
        ]
        routed = workflows[workflow_id][-1].data
        assert routed["recruiter"] and routed["decision"] in {
            "fast-track",
            "standard",
            "review-history",
        }


async def test_an_order_ships_only_after_inventory_fraud_and_payment(
    nats_server: EmbeddedNats,
) -> None:
    options = PipelineOptions(nats_url=nats_server.url, rate=20, duration=0.5)
    async with running(ORDERS, options) as runner:

        async def all_shipped() -> bool:
            events = await stream_events(nats_server.url)
            shipped = {e.workflow_id for e in events if e.subject == "orders.shipped"}
            return len(runner.started) >= 5 and shipped >= set(runner.started)

        await wait_for(all_shipped, timeout=90, what="every order to ship")
    workflows = by_workflow(await stream_events(nats_server.url))
    for workflow_id in runner.started:
        subjects = [e.subject for e in workflows[workflow_id]]
        assert subjects[0] == "orders.created" and subjects[-1] == "orders.shipped"
        assert sorted(subjects[1:4]) == [
            "orders.fraud.scored",
            "orders.inventory.reserved",
            "orders.payment.authorized",
        ]
        assert subjects.count("orders.shipped") == 1


async def test_injected_drops_poison_and_deviations_really_happen_and_are_recorded(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    truth_file = tmp_path / "ground-truth.jsonl"
    options = PipelineOptions(
        nats_url=nats_server.url,
        rate=25,
        duration=1.2,
        fault_rates={"drop": 0.2, "poison": 0.2, "deviation": 0.2},
        seed=3,
        ground_truth=truth_file,
    )
    async with running(RECRUITMENT, options) as runner:

        async def settled() -> bool:
            truth = read_ground_truth(truth_file)
            ended = {
                e.workflow_id
                for e in await stream_events(nats_server.url)
                if e.subject == "recruit.candidate.routed"
            }
            planned = len(runner.faults.planned) + sum(1 for t in truth if t["fault"] == "poison")
            dead = await stream_events(nats_server.url, wire.DEAD_LETTER_STREAM)
            faulty = {t["workflow_id"] for t in truth}
            return (
                len(runner.started) >= 20
                and len(truth) == planned
                and ended | faulty >= set(runner.started)
                and len(dead) >= sum(1 for t in truth if t["fault"] == "poison")
            )

        await wait_for(settled, timeout=90, what="every workflow to end or meet its fault")

    truth = read_ground_truth(truth_file)
    assert {t["fault"] for t in truth} == {"drop", "poison", "deviation"}
    assert {t["kind"] for t in truth} == {"dropped", "dead_lettered", "deviation"}
    workflows = by_workflow(await stream_events(nats_server.url))
    dead_letters = by_workflow(await stream_events(nats_server.url, wire.DEAD_LETTER_STREAM))
    faulty = {t["workflow_id"] for t in truth}
    for t in truth:
        subjects = [e.subject for e in workflows[t["workflow_id"]]]
        if t["fault"] == "drop":
            # the step's result never reached the stream, so its workflow stops there
            assert t["subject"] not in subjects
            assert "recruit.candidate.routed" not in subjects
        elif t["fault"] == "poison":
            assert subjects == ["recruit.application.received"]
            [dead] = dead_letters[t["workflow_id"]]
            assert dead.subject == "dlq.recruit.application.received"
            assert "not text" in dead.headers[wire.DEAD_LETTER_REASON]
        else:
            # the scorer's shortcut: routed straight after parsing, no check, no router
            assert subjects == [
                "recruit.application.received",
                "recruit.cv.parsed",
                "recruit.candidate.routed",
            ]
    for workflow_id in set(runner.started) - faulty:
        assert workflows[workflow_id][-1].subject == "recruit.candidate.routed"
