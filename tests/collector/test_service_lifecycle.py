"""The collector's life at its edges: connecting to a NATS that is not there,
and stopping (Ctrl-C, SIGTERM) at any moment."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from choreoscope.nats_server import EmbeddedNats, free_port
from collector.service import connect_nats
from instrumentation.errors import BusUnavailableError


async def test_a_nats_that_is_down_is_logged_once_not_twice_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with (
        caplog.at_level(logging.WARNING, logger="collector.service"),
        pytest.raises(BusUnavailableError, match="Connect call failed"),
    ):
        await connect_nats([url], {}, first_connect_timeout=3.0)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def _start_collect(data: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "choreoscope.cli", "collect", "--data", str(data),
         "--no-otlp-http", *args],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # a liveness bound, not a timing
    while text not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_nats_is_down_stops_the_collector_at_once(
    tmp_path: Path, signum: signal.Signals
) -> None:
    log = tmp_path / "collect.log"
    url = f"nats://127.0.0.1:{free_port()}"
    proc = _start_collect(tmp_path / "data", log, "--nats", url)
    try:
        _wait_for_line(log, "Connect call failed", proc)
        os.killpg(proc.pid, signum)
        # it kept retrying the full 30 s first-connect window (and `up` then killed it)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    text = log.read_text()
    assert "collector stopped before NATS answered" in text
    assert "Traceback" not in text


def test_ctrl_c_stops_the_collector_and_its_decode_workers_without_a_traceback(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    log = tmp_path / "collect.log"
    proc = _start_collect(
        tmp_path / "data", log, "--nats", nats_server.url, "--decode-workers", "2"
    )
    try:
        _wait_for_line(log, "collector ready", proc)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    text = log.read_text()
    # each worker printed "Process SpawnProcess-N: Traceback ... KeyboardInterrupt"
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "collector stopped: 0 spans" in text
