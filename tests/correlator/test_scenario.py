"""End to end: real agents over a real nats-server, a real collector, the
correlator. Every fault kind of the issue is injected once with known ground
truth; the findings must equal it, and no healthy workflow is flagged."""

from __future__ import annotations

import asyncio
import datetime as dt

from choreoscope.nats_server import EmbeddedNats
from correlator.engine import Correlator
from correlator.thresholds import Thresholds
from store import StoreLayout
from tests.collector.collector_harness import running_collector
from tests.correlator.scenario import running_scenario

# Time runs ~30x faster than in production (heartbeats every 300 ms, not 10 s). A
# silence of 3 beats (0.9 s) was within a busy 2-core machine's scheduling hiccups: the
# scorer read as down and back, and the dropped message as queued behind its outage
# (stalled). 6 beats (1.8 s) is still well inside the checks' waits.
THRESHOLDS = Thresholds(min_deadline_s=2.0, orphan_grace_s=1.0, silence_factor=6.0)


def findings(engine: Correlator) -> tuple[set[tuple[str, str, str]], list[dict]]:
    """One tick of the correlator, as ``correlate --watch`` runs it; its open findings."""
    engine.tick(now=dt.datetime.now(dt.UTC))
    rows = engine.ledger.rows()
    about_workflows = {
        (a["kind"], a["workflow_id"], a["step"])
        for a in rows
        if a["workflow_id"] and a["resolved_at"] is None
    }
    return about_workflows, rows


async def test_every_injected_fault_is_found_once_with_its_kind_and_step(
    nats_server: EmbeddedNats, store_layout: StoreLayout
) -> None:
    async with (
        running_collector(nats_server.url, store_layout.root),
        running_scenario(nats_server.url) as scenario,
    ):
        for _ in range(6):  # enough healthy runs to learn the choreography from
            await scenario.run_workflow()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)
        for fault in ("drop", "hang", "poison", "duplicate", "deviation", "lost_telemetry"):
            await scenario.run_workflow(fault)
            await asyncio.sleep(1.5)  # the telemetry outage is over before the next run
            await scenario.run_workflow()
            await asyncio.sleep(0.3)
        await asyncio.sleep(2.5)  # the duplicate's redelivery, the dead letter
        await scenario.stop_service("archiver")
        await scenario.run_workflow("consumer_down")

        truth = scenario.truth()
        engine = Correlator(data_dir=store_layout.root, thresholds=THRESHOLDS)
        found: set[tuple[str, str, str]] = set()
        rows: list[dict] = []
        for _ in range(40):
            await asyncio.sleep(0.5)
            found, rows = await asyncio.to_thread(findings, engine)
            if found == truth:
                break
        engine.close()

    explained = "\n".join(
        f"{a['kind']} {a['workflow_id']}: {a['detail']}"
        + (f" (resolved {a['resolved_at']:%H:%M:%S.%f})" if a["resolved_at"] else "")
        for a in rows
    )
    faulty = {wf for _, wf, _ in truth}
    assert {(k, wf) for k, wf, _ in found if wf not in faulty} == set(), explained
    assert (truth - found, found - truth) == (set(), set()), explained
