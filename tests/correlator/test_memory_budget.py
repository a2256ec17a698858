"""The correlator keeps to its memory budget: a pass over more spans than fit spills
to the store's disk and finds what it would have found in memory; a budget too
small for any pass says how to give it more, and a watcher keeps trying."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import store.spill as spill_module
from choreoscope.cli import main
from choreoscope.stack import StackOptions, correlator_spec
from correlator.alerts import Alerter
from correlator.engine import Correlator
from correlator.memory_budget import (
    MemoryBudget,
    MemoryBudgetError,
    SpillError,
    machine_memory,
)
from correlator.thresholds import Thresholds
from correlator.watch import watch
from store import StoreLayout
from tests.correlator.pipelines import healthy_run, up_to_parsed
from tests.correlator.span_shapes import OurSpans, SpanLog, at

RUNS = 6000
THRESHOLDS = Thresholds(min_deadline_s=5)
MiB = 2**20
# measured on a pass of PASS_THREADS threads: 6,000 runs (~60k spans) spill under
# 64 to 120 MiB, and a pass fails under 56 MiB whatever it spills. DuckDB takes a
# thread a core, each with buffers of its own: on 64 it fails under 80 MiB and spills
# only under 96 to 150, so the tests pin the count
SPILLING = MemoryBudget(total=80 * MiB)
TOO_SMALL = MemoryBudget(total=16 * MiB)
PASS_THREADS = 2


def _correlator(layout: StoreLayout, memory: MemoryBudget | None) -> Correlator:
    """A correlator whose passes run on PASS_THREADS threads, whatever this machine's
    core count."""
    engine = Correlator(data_dir=layout.root, thresholds=THRESHOLDS, memory=memory)
    engine.con.execute("SET threads = ?", [PASS_THREADS])
    return engine


@pytest.fixture
def busy_store(store_layout: StoreLayout) -> StoreLayout:
    """RUNS runs, every hundredth stuck: its `recruit.cv.parsed` consumed by nobody."""
    log = SpanLog()
    ours = OurSpans(log)
    for i in range(RUNS):
        if i % 100 == 0:
            up_to_parsed(ours, f"wf-{i}", start=i * 0.01)
        else:
            healthy_run(ours, f"wf-{i}", start=i * 0.01)
    log.write(store_layout)
    return store_layout


def _judged(layout: StoreLayout, memory: MemoryBudget | None) -> set[tuple[str, str]]:
    engine = _correlator(layout, memory)
    try:
        found = engine.cold_pass(now=at(3600), hold=False)
    finally:
        engine.close()
    return {(a["kind"], a["workflow_id"]) for a in found}


def test_a_pass_over_more_than_its_budget_spills_to_the_store_and_finds_the_same(
    busy_store: StoreLayout,
) -> None:
    in_memory = _judged(busy_store, memory=None)
    assert in_memory == {("dropped", f"wf-{i}") for i in range(0, RUNS, 100)}

    engine = _correlator(busy_store, SPILLING)
    spill = engine._spill.path
    assert spill.parent == busy_store.spill  # beside the store, not the working directory
    try:
        found = engine.cold_pass(now=at(3600))  # a watcher's: it keeps spans for ticks
        (spilled,) = engine.con.execute(
            "SELECT count(*) FROM duckdb_temporary_files() WHERE starts_with(path, $dir)",
            {"dir": str(spill)},
        ).fetchone()
    finally:
        engine.close()
    assert spilled > 0, "the pass fitted in memory: the store is too small to test spilling"
    assert {(a["kind"], a["workflow_id"]) for a in found} == in_memory
    assert not spill.exists()  # removed with its connection


def test_a_budget_too_small_for_a_pass_says_how_to_give_it_more(busy_store: StoreLayout) -> None:
    engine = _correlator(busy_store, TOO_SMALL)
    try:
        with pytest.raises(MemoryBudgetError) as raised:
            engine.cold_pass(now=at(3600))
    finally:
        engine.close()
    message = str(raised.value)
    assert "--memory-limit" in message and str(busy_store.spill) in message
    assert "10.7 MiB" in message  # the passes' two thirds of it
    # nothing judged is lost: a pass with room judges the store as it would have
    assert ("dropped", "wf-0") in _judged(busy_store, memory=None)


def test_a_pass_that_cannot_write_its_spill_says_where_and_what_to_do(
    busy_store: StoreLayout,
) -> None:
    engine = _correlator(busy_store, SPILLING)
    spill = engine._spill.path
    # DuckDB fails the write (a disk full, the spill directory gone) with an I/O error
    shutil.rmtree(spill)
    spill.write_text("")
    try:
        with pytest.raises(SpillError) as raised:
            engine.cold_pass(now=at(3600))
    finally:
        engine.close()
    message = str(raised.value)
    assert str(spill) in message and "free disk space" in message
    assert "--memory-limit" in message


async def test_a_watcher_short_of_memory_says_so_and_keeps_trying(
    busy_store: StoreLayout, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()

    async def publish(subject: str, payload: bytes, *, msg_id: str) -> None:  # pragma: no cover
        raise AssertionError("nothing is judged, so nothing is alerted")

    caplog.set_level(logging.INFO, logger="correlator.watch")
    task = asyncio.create_task(
        watch(
            data_dir=busy_store.root,
            alerter=Alerter(publish=publish, dashboard_url="http://127.0.0.1:8501"),
            stop=stop,
            thresholds=THRESHOLDS,
            interval_s=0.05,
            clock=lambda: at(3600),
            memory=TOO_SMALL,
        )
    )
    for _ in range(600):  # until it has failed twice
        if sum("--memory-limit" in r.getMessage() for r in caplog.records) >= 2:
            break
        await asyncio.sleep(0.05)
    assert not task.done(), "the watcher stopped"
    stop.set()
    await asyncio.wait_for(task, timeout=60)
    failures = [r for r in caplog.records if "--memory-limit" in r.getMessage()]
    assert len(failures) >= 2 and all(r.levelno == logging.ERROR for r in failures)
    assert not busy_store.spill.exists() or not any(busy_store.spill.iterdir())


def test_correlate_refuses_a_memory_limit_no_pass_can_run_in(
    busy_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["correlate", "--once", "--data", str(busy_store.root), "--memory-limit", "8MiB"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--memory-limit" in err and "256MiB" in err


def test_correlate_help_tells_the_memory_limit_and_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["correlate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--memory-limit" in help_text and "<data>/.spill" in help_text
    assert "default half this machine's memory" in help_text


def test_correlate_once_takes_its_memory_limit_from_the_environment(
    busy_store: StoreLayout, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHOREOSCOPE_MEMORY_LIMIT", "512MiB")
    assert main(["correlate", "--once", "--data", str(busy_store.root)]) == 0
    assert f"{RUNS // 100} open anomalies ({RUNS // 100} dropped)" in capsys.readouterr().out
    assert os.listdir(busy_store.spill) == []  # its spill directory went with it


def test_model_takes_the_memory_limit_a_pass_short_of_memory_names(
    busy_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # `model` learns on a correlator's pass connection, held to the same budget, as a
    # correlator learns: when it read every span into one table first, 6,000 runs
    # failed under 384MiB
    code = main(["model", "--data", str(busy_store.root), "--memory-limit", "320MiB"])
    out = capsys.readouterr().out
    assert code == 0 and "starts_with" in out
    assert os.listdir(busy_store.spill) == []


def test_up_hands_its_memory_limit_to_the_correlator(tmp_path: Path) -> None:
    options = StackOptions(
        data=tmp_path, nats_url="nats://127.0.0.1:4222", otlp_http=None, min_deadline=30.0,
        choreography=None, host="127.0.0.1", port=8501, log_level="INFO", credentials_env={},
        memory_limit=2**30,
    )  # fmt: skip
    argv = correlator_spec(options).argv
    assert argv[argv.index("--memory-limit") + 1] == str(2**30)
    assert "--memory-limit" not in correlator_spec(replace(options, memory_limit=None)).argv


@pytest.mark.parametrize(
    ("proc_cgroup", "limit_file"),
    [
        ("0::/\n", "memory.max"),  # cgroup v2, in a container
        ("0::/system.slice/agents.service\n", "system.slice/agents.service/memory.max"),
        ("4:memory:/docker/4f2a\n0::/\n", "memory/memory.limit_in_bytes"),  # v1 container
    ],
)
def test_the_default_budget_keeps_to_the_containers_memory_not_the_hosts(
    tmp_path: Path, proc_cgroup: str, limit_file: str
) -> None:
    host = machine_memory(cgroup_fs=tmp_path / "none", proc_cgroup=tmp_path / "none")
    (tmp_path / "cgroup").write_text(proc_cgroup)
    limit = tmp_path / "fs" / limit_file
    limit.parent.mkdir(parents=True)
    limit.write_text(f"{256 * MiB}\n")  # far below any host's: killed there, not spilling
    seen = machine_memory(cgroup_fs=tmp_path / "fs", proc_cgroup=tmp_path / "cgroup")
    assert seen == min(256 * MiB, host)
    limit.write_text("max\n")  # no limit
    assert machine_memory(cgroup_fs=tmp_path / "fs", proc_cgroup=tmp_path / "cgroup") == host


def test_a_pass_spills_no_more_than_its_share_of_the_disk_free(
    busy_store: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as if the store's disk had a MiB free: the collector keeps the other half
    free = shutil.disk_usage(busy_store.root).free
    monkeypatch.setattr(spill_module, "SPILL_SHARE_OF_FREE", MiB / free)
    engine = _correlator(busy_store, SPILLING)  # spills tens of MiB with room
    try:
        with pytest.raises(MemoryBudgetError) as raised:
            engine.cold_pass(now=at(3600))
    finally:
        engine.close()
    assert "free disk space" in str(raised.value)
