"""correlate --watch when its findings folder is deleted under it (by hand, or by a
cleanup script): the watcher writes every finding again, not only the ones that
change, so readers see the whole picture again within a tick."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from correlator.alerts import Alerter
from correlator.connection import connect
from store import StoreLayout
from tests.correlator.pipelines import history, up_to_parsed
from tests.correlator.span_shapes import SpanLog
from tests.correlator.test_watch_faults import Watcher


@pytest.mark.parametrize("reader_meanwhile", [False, True], ids=["folder_gone", "reader_refilled"])
async def test_findings_deleted_under_a_watcher_are_all_written_again(
    store_layout: StoreLayout, reader_meanwhile: bool
) -> None:
    log = SpanLog()
    up_to_parsed(history(log), "wf-drop-0", start=100)
    log.write(store_layout)
    alerter = Alerter(publish=None, dashboard_url="http://127.0.0.1:8501")
    watcher = await Watcher(store_layout, alerter).started()
    await asyncio.sleep(0.3)

    shutil.rmtree(store_layout.findings)
    if reader_meanwhile:  # `choreoscope sql` puts back empty files for its views to bind
        connect(store_layout.root).close()
    await asyncio.sleep(0.5)
    try:
        assert not watcher.task.done(), "the watcher stopped"
        con = connect(store_layout.root)
        # the anomaly found before, its workflow's verdict, and the model, all back
        anomalies = con.execute("SELECT workflow_id, kind FROM anomalies").fetchall()
        assert ("wf-drop-0", "dropped") in anomalies
        (status,) = con.execute(
            "SELECT status FROM workflows WHERE workflow_id = 'wf-drop-0'"
        ).fetchone()
        assert status == "stalled"
        assert con.execute("SELECT count(*) FROM choreography_steps").fetchone()[0] > 0
    finally:
        await watcher.stopped()
