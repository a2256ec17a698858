"""Fault plans: rates from flags or a file, chosen by seed, recorded as ground truth."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from choreoscope.cli import build_parser as build_choreoscope_parser
from instrumentation.errors import ConfigurationError
from samples.command_line import build_parser as build_pipeline_parser
from samples.command_line import pipeline_options
from samples.faults import (
    FAULTS,
    Fault,
    FaultPlan,
    GroundTruth,
    parse_fault_rates,
    read_ground_truth,
)
from samples.orders.agents import PIPELINE as ORDERS
from samples.pipeline import PipelineRunner
from samples.recruitment.agents import PIPELINE as RECRUITMENT

EVERY_STEP = {name: ["scorer", "router"] for name in FAULTS}


def test_fault_rates_come_from_a_flag_or_a_yaml_file(tmp_path: Path) -> None:
    assert parse_fault_rates("drop=0.05, hang=0.02") == {"drop": 0.05, "hang": 0.02}
    rates_file = tmp_path / "faults.yaml"
    rates_file.write_text("poison: 0.1\nconsumer_down: 0.01\n")
    assert parse_fault_rates(str(rates_file)) == {"poison": 0.1, "consumer_down": 0.01}
    assert parse_fault_rates("none") == {}
    assert set(parse_fault_rates("demo")) == set(FAULTS)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("explode=0.1", "fault kinds are drop, hang"),
        ("drop=2", "between 0 and 1"),
        ("drop=lots", "between 0 and 1"),
        ("drop", "write rates like drop=0.05"),
        ("drop=0.6,hang=0.6", "add up to at most 1"),
        ("nope.yaml", "there is no file nope.yaml"),
    ],
)
def test_bad_fault_rates_are_refused_with_what_to_write(text: str, hint: str) -> None:
    with pytest.raises(ConfigurationError, match=hint) as refused:
        parse_fault_rates(text)
    assert isinstance(refused.value, ValueError)


def test_the_same_seed_gives_the_same_faulty_workflows() -> None:
    rates = {"drop": 0.1, "hang": 0.1, "slow": 0.1}
    plan_a = FaultPlan(rates=rates, steps=EVERY_STEP, seed=42)
    plan_b = FaultPlan(rates=rates, steps=EVERY_STEP, seed=42)
    plan_c = FaultPlan(rates=rates, steps=EVERY_STEP, seed=43)
    draws_a = [plan_a.draw() for _ in range(500)]
    assert draws_a == [plan_b.draw() for _ in range(500)]
    assert draws_a != [plan_c.draw() for _ in range(500)]
    assert any(draws_a) and not all(draws_a)


def test_rates_decide_the_share_of_faulty_workflows() -> None:
    plan = FaultPlan(rates={"drop": 0.2, "hang": 0.05}, steps=EVERY_STEP, seed=1)
    draws = [plan.draw() for _ in range(4000)]
    drops = sum(1 for d in draws if d and d.name == "drop")
    hangs = sum(1 for d in draws if d and d.name == "hang")
    assert 600 < drops < 1000
    assert 100 < hangs < 300
    assert {d.step for d in draws if d} == {"scorer", "router"}


def test_a_fault_the_pipeline_has_no_step_for_is_never_drawn() -> None:
    plan = FaultPlan(rates={"drop": 0.5, "hang": 0.5}, steps={"hang": ["scorer"]}, seed=1)
    draws = [plan.draw() for _ in range(200)]
    assert plan.unsupported == ["drop"]
    assert {d.name for d in draws if d} == {"hang"}


def _record_many(path: Path, pipeline: str) -> None:
    truth = GroundTruth(path, pipeline=pipeline)
    for i in range(200):
        truth.record(workflow_id=f"{pipeline}-{i}", fault=Fault(name="drop", step="scorer"))


def test_ground_truth_from_two_pipelines_at_once_stays_one_fault_per_line(tmp_path: Path) -> None:
    path = tmp_path / "ground-truth.jsonl"
    workers = [
        multiprocessing.get_context("spawn").Process(target=_record_many, args=(path, name))
        for name in ("orders", "recruitment")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    lines = read_ground_truth(path)
    assert len(lines) == 400
    assert {line["kind"] for line in lines} == {"dropped"}
    assert {line["fault"] for line in lines} == {"drop"}
    assert lines[0].keys() >= {"workflow_id", "kind", "step"}


def test_a_fault_file_that_is_not_yaml_is_refused_with_what_to_write(tmp_path: Path) -> None:
    broken = tmp_path / "faults.yaml"
    broken.write_text("drop: [0.05\n")

    with pytest.raises(ConfigurationError, match="not valid YAML"):
        parse_fault_rates(str(broken))


def _demo_plans() -> dict[str, tuple[FaultPlan, float]]:
    """Each pipeline's fault plan as `choreoscope demo` with its default options starts
    it (it passes its --faults, --seed and --rate to every pipeline), and the rate."""
    demo = build_choreoscope_parser().parse_args(["demo"])
    plans = {}
    for pipeline in (RECRUITMENT, ORDERS):
        args = build_pipeline_parser(pipeline, "").parse_args(
            ["--faults", demo.faults, "--seed", str(demo.seed), "--rate", f"{demo.rate:g}"]
        )
        plans[pipeline.name] = (PipelineRunner(pipeline, pipeline_options(args)).plan, demo.rate)
    return plans


def test_the_default_demo_injects_every_fault_kind_it_advertises_within_two_minutes() -> None:
    # at one fault in 200 workflows per kind, the default seed drew no hang for the
    # first 7 minutes and no crash for 6: a five-minute tour never saw either
    shown: set[str] = set()
    for name, (plan, rate) in _demo_plans().items():
        opening = [fault for fault in (plan.draw() for _ in range(int(120 * rate))) if fault]
        kinds = [fault.name for fault in opening]
        assert sorted(kinds) == sorted(plan.rates), name  # each it has a step for, once
        # an outage holds every other fault back while it waits and runs: it comes last,
        # so none of the others is drawn only to be left out
        assert kinds[-1] == "consumer_down", name
        shown |= set(kinds)
    assert shown == set(FAULTS)


def test_the_demo_opening_is_reproducible_by_seed_and_then_draws_at_its_rates() -> None:
    def draws(seed: int) -> list[Fault | None]:
        plan = FaultPlan(rates=parse_fault_rates("demo"), steps=EVERY_STEP, seed=seed,
                         showcase=True)  # fmt: skip
        return [plan.draw() for _ in range(4090)]

    seven = draws(7)
    assert seven == draws(7)
    assert [f.name for f in seven[:90] if f] != [f.name for f in draws(8)[:90] if f]
    # afterwards, the mix is the demo's rates again: 9 kinds x 0.5 % of 4000 workflows
    assert 100 < sum(1 for f in seven[90:] if f) < 270
