"""Every command, recipe and example the README shows works as shown."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from choreoscope.cli import build_parser
from choreoscope.nats_server import EmbeddedNats, free_port
from choreoscope.settings import SETTINGS
from choreoscope.settings_table import with_table
from choreoscope.supervisor import port_accepts
from correlator.choreography_file import parse_choreography
from instrumentation import Agent, wire
from instrumentation.errors import PublishError
from samples.command_line import build_parser as sample_parser
from samples.orders.agents import PIPELINE as ORDERS
from samples.recruitment.agents import PIPELINE as RECRUITMENT
from store import StoreLayout
from tests.correlator.pipelines import correlate, lost_while_the_scorer_was_down
from tests.dashboard.fixture_store import STALLED_WORKFLOW, build_recruitment_store
from tests.samples.pipeline_harness import BusEvent, stream_events, wait_for
from tests.samples.readme_blocks import (
    README,
    code_blocks,
    commands_of,
    readme_text,
)

ROOT = README.parent


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the recruitment scenario, built by real ingest and a real correlator pass."""
    return build_recruitment_store(tmp_path_factory.mktemp("readme") / "data").root


def run_choreoscope(argv: list[str], *, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, SETTINGS["data"].env: str(data)}
    return subprocess.run(
        [sys.executable, "-m", "choreoscope.cli", *argv[1:]],
        capture_output=True, text=True, env=env, timeout=60, cwd=ROOT,
    )  # fmt: skip


def test_the_configuration_table_lists_every_setting_as_the_code_defines_it() -> None:
    text = readme_text()
    assert with_table(text) == text, "run python -m choreoscope.settings_table"
    for setting in SETTINGS.values():
        assert f"`{setting.env}`" in text


def test_every_choreoscope_command_shown_is_one_the_cli_accepts() -> None:
    parser = build_parser()
    commands = commands_of("choreoscope")
    assert len(commands) >= 10
    for argv in commands:
        args = parser.parse_args(argv[1:])  # exits (fails the test) on a bad command line
        assert callable(args.handler)


def test_every_make_target_and_sample_command_shown_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for argv in commands_of("make"):
        assert re.search(rf"^{argv[1]}:", makefile, re.M), argv
    pipelines = {"samples.recruitment": RECRUITMENT, "samples.orders": ORDERS}
    samples = [argv for argv in commands_of("python") if argv[1] == "-m"]
    assert {argv[2] for argv in samples} >= set(pipelines)
    for argv in samples:
        if argv[2] in pipelines:
            sample_parser(pipelines[argv[2]], "").parse_args(argv[3:])


def test_the_screenshots_shown_are_in_the_repository() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme_text())
    assert {"docs/screenshots/overview.png", "docs/screenshots/workflow-detail.png"} <= set(images)
    for image in images:
        assert (ROOT / image).is_file(), (
            f"{image} is missing: python -m tests.dashboard.take_screenshots"
        )


def test_the_terminal_tour_runs_against_a_store(fixture_store: Path) -> None:
    tour = [a for a in commands_of("choreoscope") if a[1] in {"workflows", "show", "sql", "model"}]
    assert {a[1] for a in tour} == {"workflows", "show", "sql", "model"}
    for argv in tour:
        argv = [STALLED_WORKFLOW if a == "<WORKFLOW_ID>" else a for a in argv]
        argv = [str(fixture_store.parent / a) if a == "choreography.yaml" else a for a in argv]
        result = run_choreoscope(argv, data=fixture_store)
        assert result.returncode == 0, f"{argv}: {result.stderr}"
        if argv[1] in {"workflows", "show"}:
            assert STALLED_WORKFLOW in result.stdout
    learned = parse_choreography((fixture_store.parent / "choreography.yaml").read_text())
    assert learned.workflows


def sql_recipe(word: str) -> str:
    [recipe] = [q for q in code_blocks("sql") if word in q]
    return recipe


def recipe_rows(recipe: str, data: Path) -> list[dict]:
    result = run_choreoscope(["choreoscope", "sql", "--format", "json", recipe], data=data)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_stalled_workflows_recipe_names_the_stuck_workflow_and_why(
    fixture_store: Path,
) -> None:
    rows = recipe_rows(sql_recipe("w.status = 'stalled'"), fixture_store)
    [stalled] = [r for r in rows if r["workflow_id"] == STALLED_WORKFLOW]
    assert stalled["waiting_on"] and stalled["root_cause"] == "dropped"
    assert stalled["detail"]


def test_the_stalled_workflows_recipe_explains_a_run_whose_cause_changed_since(
    tmp_path: Path,
) -> None:
    # stalled while the scorer was down, then lost once it was back: its anomaly is
    # as first told (consumer down), its status as it stands now (dropped)
    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    lost_while_the_scorer_was_down(layout)
    correlate(layout, now_s=108)
    correlate(layout, now_s=130)

    rows = recipe_rows(sql_recipe("w.status = 'stalled'"), layout.root)

    [stalled] = [r for r in rows if r["workflow_id"] == "wf-lost"]
    assert stalled["root_cause"] == "dropped" and stalled["kind"] == "stalled"
    assert "which is down" in stalled["detail"]


def test_the_hop_latency_recipe_gives_percentiles_per_hop(fixture_store: Path) -> None:
    rows = recipe_rows(sql_recipe("from hops"), fixture_store)
    assert rows and all(r["hops"] > 0 for r in rows)
    assert all(r["latency_p99_ms"] >= r["latency_p95_ms"] >= 0 for r in rows)


def test_the_drop_rate_recipe_shows_the_edge_that_lost_a_message(fixture_store: Path) -> None:
    rows = recipe_rows(sql_recipe("from edges"), fixture_store)
    assert rows[0]["drop_percent"] > 0
    assert rows[0]["subject"] == "recruit.cv.parsed"


def test_the_declared_choreography_example_is_valid() -> None:
    [example] = code_blocks("yaml")
    declared = parse_choreography(example)
    assert declared.workflows[0].name == "recruitment"
    shipped = yaml.safe_load((ROOT / "samples" / "choreography.yaml").read_text())
    assert parse_choreography(yaml.safe_dump(shipped)).workflows


async def test_the_ten_line_agent_scores_a_cv(nats_server: EmbeddedNats, tmp_path: Path) -> None:
    [example] = code_blocks("python")
    assert len([line for line in example.splitlines() if line.strip()]) <= 12
    program = tmp_path / "scorer.py"
    program.write_text(example.replace("nats://127.0.0.1:4222", nats_server.url))
    agent = subprocess.Popen([sys.executable, str(program)], cwd=ROOT)
    producer = Agent("intake", nats_url=nats_server.url)
    try:
        workflow_id = None
        while workflow_id is None:  # until the example agent has created its stream
            try:
                workflow_id = await producer.start_workflow(
                    "recruit.cv.parsed", {"skills": ["python", "sql"]}
                )
            except PublishError:
                await asyncio.sleep(0.2)

        async def scored() -> list[BusEvent]:
            events = await stream_events(nats_server.url)
            return [e for e in events if e.subject == "recruit.candidate.scored"]

        await wait_for(scored, what="the example agent to emit recruit.candidate.scored")
        [event] = await scored()
    finally:
        await producer.close()
        agent.terminate()
        agent.wait(timeout=30)
    assert event.workflow_id == workflow_id
    assert event.data == {"score": 0.9}
    assert event.headers[wire.TRACEPARENT]


def test_the_otlp_curl_example_is_accepted_by_the_collector(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    [curl] = commands_of("curl")
    port = free_port()
    log = tmp_path / "collector.log"
    with open(log, "wb") as out:
        collector = subprocess.Popen(
            [sys.executable, "-m", "choreoscope.cli", "collect", "--nats", nats_server.url,
             "--data", str(tmp_path / "data"), "--otlp-http", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        listening = port_accepts("127.0.0.1", port)
        deadline = time.monotonic() + 90
        while not listening() and collector.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listening(), log.read_text()
        argv = [a.replace("127.0.0.1:4318", f"127.0.0.1:{port}") for a in curl]
        argv[1:1] = ["-w", "\n%{http_code}"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    finally:
        collector.terminate()
        collector.wait(timeout=30)
    assert result.stdout.strip().endswith("200"), result.stdout + result.stderr + log.read_text()
