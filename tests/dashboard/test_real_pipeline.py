"""End to end: a real pipeline's dropped message, seen on the dashboard.

The recruitment sample runs its agents (our instrumentation) on a real nats-server
with a drop fault; their spans go over JetStream to a real collector, which writes
the store; the correlator judges it; the dashboard shows the stalled workflow,
where it waits and why, and opens it from a deep link.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from choreoscope.nats_server import EmbeddedNats
from correlator.engine import Correlator
from correlator.thresholds import Thresholds
from samples.faults import read_ground_truth
from samples.pipeline import PipelineOptions
from samples.recruitment.agents import PIPELINE as RECRUITMENT
from tests.collector.collector_harness import running_collector, scalar
from tests.dashboard.app_driver import open_dashboard, plain_texts
from tests.samples.pipeline_harness import running


async def settled_span_count(data_dir: Path, *, quiet_s: float = 1.0, timeout: float = 30.0) -> int:
    """Wait until the store's span count stops growing; returns it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last, last_change = -1, loop.time()
    while loop.time() < deadline:
        try:
            count = scalar(data_dir, "SELECT count(*) FROM spans_raw")
        except Exception:
            count = -1
        if count != last:
            last, last_change = count, loop.time()
        elif count > 0 and loop.time() - last_change >= quiet_s:
            return count
        await asyncio.sleep(0.2)
    return last


def correlate_now(data_dir: Path) -> None:
    # Test-sized deadlines; heartbeats (every 0.25 s here) may lag the collector's
    # flush, so a service counts as down only after 20 missed beats.
    thresholds = Thresholds(min_deadline_s=2.0, silence_factor=20.0)
    engine = Correlator(data_dir=data_dir, thresholds=thresholds)
    try:
        engine.cold_pass(now=dt.datetime.now(dt.UTC))
        engine.write_findings()
    finally:
        engine.close()


@pytest.mark.timeout(120)
async def test_a_dropped_message_in_a_real_pipeline_is_shown_stalled_and_explained(
    nats_server: EmbeddedNats, tmp_path: Path
):
    data_dir = tmp_path / "data"
    truth = tmp_path / "ground-truth.jsonl"
    options = PipelineOptions(
        nats_url=nats_server.url,
        rate=20,
        duration=1.0,
        fault_rates={"drop": 0.25},
        seed=5,
        step_deadline=1.0,
        ground_truth=truth,
    )
    async with (
        running_collector(nats_server.url, data_dir),
        running(RECRUITMENT, options) as runner,
    ):
        while len(runner.started) < 20:
            await asyncio.sleep(0.1)
        assert await settled_span_count(data_dir) > 0
        await asyncio.sleep(2.5)  # past the step deadline; the agents still heartbeat
        correlate_now(data_dir)
    drops = {f["workflow_id"]: f["step"] for f in read_ground_truth(truth) if f["fault"] == "drop"}
    assert drops, "the seed must inject at least one drop"
    dropped = sorted(drops)

    overview = open_dashboard(data_dir)
    stuck = next(d.value for d in overview.dataframe if "waiting_on" in d.value.columns)
    assert set(dropped) <= set(stuck["workflow_id"])

    detail = open_dashboard(data_dir, workflow=dropped[0])
    assert dropped[0] in plain_texts(detail)
    assert any(e.value.startswith("Stalled") for e in detail.error)
    # The explanation names the service whose message was lost, and the drop.
    explanations = [t for t in plain_texts(detail) if t.startswith("stalled at `")]
    assert explanations, plain_texts(detail)[:3]
    assert f"by `{drops[dropped[0]]}`" in explanations[0]
    assert "never received by consumer group" in explanations[0]
