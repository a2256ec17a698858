"""Operating `up`, `demo` and their parts: restarts, ports and signals, as an operator
meets them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil

from choreoscope.nats_server import free_port
from tests.samples.test_demo import choreoscope, wait_until_gone


def leave_in_time_wait(port: int) -> None:
    """What a server just stopped leaves on its port: connections it closed first
    (a readiness probe, a browser tab), in TIME_WAIT for a minute, and no listener."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server closes first: its side waits
            client.recv(1)  # its end of file
    with socket.socket() as plain:  # the check that failed: no SO_REUSEADDR
        try:
            plain.bind(("127.0.0.1", port))
        except OSError:
            return
    raise AssertionError(f"port {port} was left in no TIME_WAIT a plain bind refuses")


def test_a_port_whose_server_just_stopped_is_taken_again_at_once(tmp_path: Path) -> None:
    # `up` stopped and started again was refused for a minute: "--port ... is in use"
    port = free_port()
    leave_in_time_wait(port)
    server = subprocess.Popen(
        choreoscope("nats", "--data", str(tmp_path / "data"), "--port", str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        first = ""
        for line in server.stdout:
            first += line
            if "Ctrl-C" in line or "error" in line:
                break
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert f"nats-server on nats://127.0.0.1:{port}" in first, first + rest
    assert server.returncode == 0, first + rest
    assert wait_until_gone(tmp_path / "data") == []


def start_up(data: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """`choreoscope up` on ``data``, headless, once it says it is up (or why not)."""
    up = subprocess.Popen(
        choreoscope("up", "--no-dashboard", "--data", str(data),
                    "--otlp-http", f"127.0.0.1:{free_port()}", *args),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert up.stdout is not None
    output = ""
    for line in up.stdout:
        output += line
        if "Ctrl-C stops everything" in line or "exited" in line:
            break
    return up, output


def test_a_second_stack_on_the_same_store_is_refused_naming_the_first(tmp_path: Path) -> None:
    # it started a second nats-server on the first's JetStream directory, said it was up,
    # then lost its correlator to the first's
    data = tmp_path / "data"
    first, output = start_up(data)
    try:
        assert "Ctrl-C stops everything" in output, output
        ports_files = sorted((data / "nats" / "ports").glob("*.ports"))
        assert ports_files
        for command in (["up", "--no-dashboard"], ["demo", "--no-dashboard", "--faults", "none"]):
            second = subprocess.run(
                choreoscope(*command, "--data", str(data),
                            "--otlp-http", f"127.0.0.1:{free_port()}"),
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert second.returncode == 2, second.stdout + second.stderr
            assert f"`choreoscope up` (pid {first.pid} on host" in second.stderr
            assert f"already runs on the store {data}" in second.stderr
            assert "starting" not in second.stdout
        assert first.poll() is None
        assert sorted((data / "nats" / "ports").glob("*.ports")) == ports_files
        assert not (data / "demo").exists()
        first.send_signal(signal.SIGTERM)
        rest, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, output + rest
    assert wait_until_gone(data) == []


def test_sigterm_while_the_dashboard_starts_stops_without_announcing_it_up(
    tmp_path: Path,
) -> None:
    # the stop waited for the dashboard to be ready (up to a minute), then printed
    # "choreoscope is up" and "Open the dashboard" on its way down
    data = tmp_path / "data"
    up = subprocess.Popen(
        choreoscope("up", "--data", str(data), "--port", str(free_port()),
                    "--otlp-http", f"127.0.0.1:{free_port()}"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert up.stdout is not None
        output = ""
        for line in up.stdout:
            output += line
            if "starting dashboard" in line or "exited" in line:
                break
        assert "starting dashboard" in output, output
        up.send_signal(signal.SIGTERM)
        rest, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0, output + rest
    assert "stopped on request before dashboard was ready" in rest
    assert "choreoscope is up" not in rest and "Open the dashboard" not in rest
    assert "stopping dashboard, correlator, collector, nats-server" in rest
    assert wait_until_gone(data) == []


def test_collect_refuses_a_taken_otlp_port_before_making_a_store_or_starting_nats(
    tmp_path: Path,
) -> None:
    # it made the store, started an embedded nats-server and created the streams first
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            choreoscope("collect", "--data", str(data), "--otlp-http", f"127.0.0.1:{port}"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--otlp-http='127.0.0.1:{port}' cannot be used" in result.stderr
    assert "pass --otlp-http with a free one" in result.stderr
    assert not data.exists()


def test_a_taken_port_set_in_the_environment_names_the_variable_to_change(
    tmp_path: Path,
) -> None:
    # the message said only "pass --port": the operator had set no flag
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = subprocess.run(
            choreoscope("up", "--data", str(tmp_path / "data"),
                        "--otlp-http", f"127.0.0.1:{free_port()}"),
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "CHOREOSCOPE_PORT": str(port)},
        )  # fmt: skip
        nats_server = subprocess.run(
            choreoscope("nats", "--data", str(tmp_path / "data"), "--port", str(port)),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert up.returncode == 2, up.stdout + up.stderr
    assert f"--port='127.0.0.1:{port}' cannot be used" in up.stderr
    assert "pass --port with a free one (or set CHOREOSCOPE_PORT)" in up.stderr
    assert up.stdout == ""
    # `nats --port` is no setting: CHOREOSCOPE_PORT is the dashboard's
    assert nats_server.returncode == 2
    assert "pass --port with a free one" in nats_server.stderr
    assert "CHOREOSCOPE_PORT" not in nats_server.stderr


def hold_port(port: int) -> socket.socket | None:
    """A listener on ``port``, or None if something else listens there already."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", port))
    except OSError:
        holder.close()
        return None
    holder.listen()
    return holder


def test_a_taken_nats_port_the_user_chose_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    # `up` and `demo` quietly moved their nats-server to a random port: services set up
    # for the chosen one reached whatever held it
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = subprocess.run(
            choreoscope("up", "--no-dashboard", "--data", str(tmp_path / "up"),
                        "--otlp-http", f"127.0.0.1:{free_port()}", "--nats-port", str(port)),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        demo = subprocess.run(
            choreoscope("demo", "--no-dashboard", "--data", str(tmp_path / "demo"),
                        "--otlp-http", f"127.0.0.1:{free_port()}", "--duration", "5s"),
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "CHOREOSCOPE_NATS_PORT": str(port)},
        )  # fmt: skip
    for result in (up, demo):
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"--nats-port='127.0.0.1:{port}' cannot be used" in result.stderr
        assert "pass --nats-port with a free one (or set CHOREOSCOPE_NATS_PORT)" in result.stderr
        assert result.stdout == ""
    assert not (tmp_path / "up" / "nats").exists()
    assert not (tmp_path / "demo" / "nats").exists() and not (tmp_path / "demo" / "demo").exists()


def test_the_default_nats_port_taken_says_which_url_services_must_use(tmp_path: Path) -> None:
    # it fell back to a random port and showed it only in the table
    holder = hold_port(4222)  # None: something else holds 4222, as a user's would
    data = tmp_path / "data"
    try:
        up, output = start_up(data)
        try:
            assert "Ctrl-C stops everything" in output, output
            [notice] = [line for line in output.splitlines() if "4222 is taken" in line]
            url = notice.split("point them at ")[1].split(",")[0]
            assert url != "nats://127.0.0.1:4222" and url.startswith("nats://127.0.0.1:")
            assert "services configured for nats://127.0.0.1:4222 will not reach it" in notice
            assert "--nats-port (or CHOREOSCOPE_NATS_PORT)" in notice
            assert f"choreoscope is up on {url}:" in output
            up.send_signal(signal.SIGTERM)
            rest, _ = up.communicate(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
    finally:
        if holder is not None:
            holder.close()
    assert up.returncode == 0, output + rest
    assert wait_until_gone(data) == []


def test_a_second_ctrl_c_while_stopping_kills_a_hung_component_at_once(tmp_path: Path) -> None:
    # a component not answering SIGTERM held `up` for its whole 15 s grace, however
    # often Ctrl-C was pressed
    data = tmp_path / "data"
    up, output = start_up(data, "--nats-port", str(free_port()))
    [correlator] = [
        p for p in psutil.Process(up.pid).children() if "correlate" in " ".join(p.cmdline())
    ]
    try:
        assert "Ctrl-C stops everything" in output, output
        correlator.suspend()  # hung: SIGTERM stays pending, as if ignored
        up.send_signal(signal.SIGINT)
        assert up.stdout is not None
        for line in up.stdout:
            output += line
            if line.startswith("stopping"):
                break
        assert "(Ctrl-C again kills them at once)" in output, output
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=10)  # well within the grace
    finally:
        if up.poll() is None:
            up.kill()
        with contextlib.suppress(psutil.NoSuchProcess):
            correlator.kill()
    assert "stop forced by a second Ctrl-C or SIGTERM: killed correlator" in rest, rest
    assert "(SIGKILL)" in rest
    assert not correlator.is_running()
    assert wait_until_gone(data) == []
