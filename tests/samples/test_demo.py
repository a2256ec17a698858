"""`choreoscope demo` and `choreoscope up`, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nats
import psutil

from choreoscope.nats_server import EmbeddedNats, free_port
from instrumentation import wire


def choreoscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "choreoscope.cli", *args]


def processes_using(path: Path) -> list[psutil.Process]:
    """Processes whose command line mentions ``path`` (the components of one run)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        with_path = any(str(path) in part for part in (proc.info["cmdline"] or []))
        if with_path and proc.pid != os.getpid():
            found.append(proc)
    return found


def wait_until_gone(path: Path, *, timeout: float = 30.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = processes_using(path)
        if not left:
            return []
        time.sleep(0.2)
    return processes_using(path)


def test_demo_refuses_a_taken_otlp_port_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            choreoscope("demo", "--no-dashboard", "--data", str(tmp_path / "data"),
                        "--otlp-http", f"127.0.0.1:{port}"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"--otlp-http='127.0.0.1:{port}' cannot be used" in result.stderr
    assert "pass --otlp-http with a free one" in result.stderr
    assert not (tmp_path / "data" / "nats").exists()


def test_demo_reports_a_component_that_fails_to_start_and_stops_the_others(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "store.json").write_text(json.dumps({"schema_version": 999}))
    result = subprocess.run(
        choreoscope("demo", "--no-dashboard", "--data", str(data),
                    "--otlp-http", f"127.0.0.1:{free_port()}"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "collector exited while starting (exit code 2)" in result.stdout
    assert "schema version 999" in result.stdout  # the tail of the collector's log
    assert f"{data}/logs/collector.log" in result.stdout
    assert "everything stopped" in result.stdout
    assert wait_until_gone(data) == []


def test_up_stops_every_component_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = subprocess.Popen(
        choreoscope("up", "--no-dashboard", "--data", str(data),
                    "--otlp-http", f"127.0.0.1:{free_port()}", "--min-deadline", "2s"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = []
        assert up.stdout is not None
        for line in up.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line or "exited" in line:
                break
        output = "".join(lines)
        assert "Ctrl-C stops everything" in output, output
        assert "collector" in output and "correlator" in output and "nats-server" in output
        components = processes_using(data)
        assert len(components) >= 3
        up.send_signal(signal.SIGTERM)
        rest, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0, output + rest
    assert "stopping correlator, collector, nats-server" in rest
    assert wait_until_gone(data) == []


def test_demo_serves_the_dashboard_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    demo = subprocess.Popen(
        choreoscope("demo", "--data", str(data), "--port", str(port), "--faults", "none",
                    "--otlp-http", f"127.0.0.1:{free_port()}"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line or "exited" in line:
                break
        output = "".join(lines)
        assert f"Open the dashboard: http://127.0.0.1:{port}" in output, output
        for name in ("nats-server", "collector", "correlator", "recruitment", "orders"):
            assert f"  {name}" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as r:
            assert r.status == 200
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, output + rest
    assert "stopping correlator, dashboard, orders, recruitment, collector, nats-server" in rest
    assert wait_until_gone(data) == []


async def test_up_reaches_a_nats_that_needs_a_token_without_showing_it_in_ps(
    tmp_path: Path,
) -> None:
    token = "s3cret-token-for-up"
    server = EmbeddedNats(
        store_dir=tmp_path / "nats", extra_args=("--auth", token), log_file=tmp_path / "n.log"
    )
    data = tmp_path / "data"
    with server:
        up = subprocess.Popen(
            choreoscope("up", "--nats", server.url, "--no-dashboard", "--data", str(data),
                        "--otlp-http", f"127.0.0.1:{free_port()}", "--min-deadline", "2s"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "CHOREOSCOPE_TOKEN": token},
        )  # fmt: skip
        try:
            assert up.stdout is not None
            lines = []
            for line in up.stdout:
                lines.append(line)
                if "Ctrl-C stops everything" in line or "exited" in line:
                    break
            output = "".join(lines)
            assert f"choreoscope is up on {server.url}" in output, output
            components = processes_using(data)
            assert {"collect", "correlate"} <= {p.cmdline()[3] for p in components}
            assert all(token not in " ".join(p.cmdline()) for p in components)
            nc = await nats.connect(server.url, token=token)
            try:
                info = await nc.jetstream().stream_info(wire.SPANS_STREAM)  # the collector's
                assert info.config.name == wire.SPANS_STREAM
            finally:
                await nc.close()
            up.send_signal(signal.SIGTERM)
            rest, _ = up.communicate(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
    assert up.returncode == 0, output + rest
    assert wait_until_gone(data) == []


def test_no_component_outlives_a_killed_supervisor(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = subprocess.Popen(
        choreoscope("up", "--no-dashboard", "--data", str(data),
                    "--otlp-http", f"127.0.0.1:{free_port()}"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert up.stdout is not None
        for line in up.stdout:
            if "Ctrl-C stops everything" in line or "exited" in line:
                break
        assert len(processes_using(data)) >= 3
        up.kill()  # SIGKILL: the supervisor gets no chance to stop anything
        up.wait(timeout=30)
    finally:
        if up.poll() is None:
            up.kill()
    assert wait_until_gone(data) == []
