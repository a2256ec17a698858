"""A sample pipeline whose NATS stops first (the demo's nats-server stopped or killed)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from choreoscope.nats_server import EmbeddedNats
from tests.samples.pipeline_harness import stream_events


@pytest.mark.parametrize("end_of_nats", ["stop", "kill"])
async def test_a_pipeline_outliving_its_nats_stops_quietly(tmp_path: Path, end_of_nats: str):
    server = EmbeddedNats(store_dir=tmp_path / "nats", log_file=tmp_path / "nats-server.log")
    server.start()
    pipeline = subprocess.Popen(
        [sys.executable, "-m", "samples.recruitment", "--nats", server.url, "--rate", "5"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not await stream_events(server.url) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # until workflows run, spans included
        await asyncio.sleep(1)
        server.kill() if end_of_nats == "kill" else server.stop()
        await asyncio.sleep(1.5)  # its connections notice, and try again
        pipeline.send_signal(signal.SIGTERM)
        _, log = pipeline.communicate(timeout=60)
    finally:
        pipeline.kill()
        server.stop()

    assert pipeline.returncode == 0, log
    assert "Traceback" not in log
    assert "Task was destroyed" not in log
    told = [line for line in log.splitlines() if "gone" in line or "not exported" in line]
    assert len(told) == 1, log
    assert f"recruitment: NATS at {server.url} was gone before the pipeline stopped" in told[0]
