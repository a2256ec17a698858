"""The supervisor behind `choreoscope demo` and `up`: crashes are reported, stops are clean."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest

from choreoscope.supervisor import (
    RUN_HEADER,
    ChildFailedError,
    ChildSpec,
    Supervisor,
    port_accepts,
)

# A child that records SIGTERM in a shared file, then exits, so the order is visible.
RECORDS_SIGTERM = """
import signal, sys, time
name, record = sys.argv[1], sys.argv[2]
def on_term(*_):
    with open(record, "a") as f:
        f.write(name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print(name, "running", flush=True)
while True:
    time.sleep(0.05)
"""


def python_child(name: str, code: str, *args: str) -> ChildSpec:
    return ChildSpec(name=name, argv=[sys.executable, "-c", code, *args])


def this_run(supervisor: Supervisor, name: str) -> str:
    """What the child wrote to its log, after the header line (which quotes its code)."""
    text = supervisor.log_file(name).read_text()
    return text.partition("\n")[2] if text.startswith(RUN_HEADER) else text


def test_crashed_child_is_reported_with_its_exit_code_and_log_tail(tmp_path: Path) -> None:
    crash = (
        "import time, sys; print('loading model'); time.sleep(0.3); "
        "print('boom: out of tokens'); sys.exit(3)"
    )
    with Supervisor(log_dir=tmp_path / "logs", poll_interval=0.05) as supervisor:
        supervisor.start(python_child("scorer", crash))
        crashed = supervisor.watch(stop=threading.Event(), duration=30)
    assert [c.name for c in crashed] == ["scorer"]
    assert crashed[0].returncode == 3
    assert "boom: out of tokens" in crashed[0].log_tail
    explanation = crashed[0].explain()
    assert "exit code 3" in explanation and "boom: out of tokens" in explanation


EARLIER_RUNS = "earlier run: started\nearlier run: boom, long ago\n"


def test_a_crash_report_shows_only_this_runs_log_which_a_header_opens(tmp_path: Path) -> None:
    # logs are appended run after run, and the tail of a crash showed earlier runs' lines
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "scorer.log").write_text(EARLIER_RUNS)
    crash = "import sys; print('boom: out of tokens'); sys.exit(3)"
    with Supervisor(log_dir=tmp_path / "logs", poll_interval=0.05) as supervisor:
        supervisor.start(python_child("scorer", crash))
        pid = supervisor.pid("scorer")
        [crashed] = supervisor.watch(stop=threading.Event(), duration=30)
    assert "boom: out of tokens" in crashed.log_tail
    assert "earlier run" not in crashed.log_tail and "earlier run" not in crashed.explain()
    earlier, _, run = (tmp_path / "logs" / "scorer.log").read_text().partition("\n\n")
    assert earlier + "\n" == EARLIER_RUNS
    header, _, output = run.partition("\n")
    assert re.fullmatch(
        rf"=== choreoscope run started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC, pid {pid}: "
        rf"{re.escape(sys.executable)} -c .*sys\.exit\(3\).*",
        header,
    ), header
    assert output == "boom: out of tokens\n"


def test_a_child_failing_to_start_is_reported_with_this_runs_log_alone(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "nats-server.log").write_text(EARLIER_RUNS)
    fails = "import sys; print('address already in use'); sys.exit(1)"
    spec = ChildSpec(name="nats-server", argv=[sys.executable, "-c", fails], ready=lambda: False)
    with (
        Supervisor(log_dir=tmp_path / "logs", poll_interval=0.05) as supervisor,
        pytest.raises(ChildFailedError) as failure,
    ):
        supervisor.start(spec)
    assert "address already in use" in str(failure.value)
    assert "earlier run" not in str(failure.value)


def test_children_are_stopped_last_started_first(tmp_path: Path) -> None:
    record = tmp_path / "stopped.txt"
    with Supervisor(log_dir=tmp_path / "logs", poll_interval=0.05) as supervisor:
        for name in ("nats", "collector", "dashboard"):
            supervisor.start(python_child(name, RECORDS_SIGTERM, name, str(record)))
        # wait until each installed its handler
        for name in ("nats", "collector", "dashboard"):
            while "running" not in this_run(supervisor, name):
                time.sleep(0.05)
    assert record.read_text().split() == ["dashboard", "collector", "nats"]


def test_child_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(600)"
    )
    supervisor = Supervisor(log_dir=tmp_path / "logs", grace=0.5, poll_interval=0.05)
    supervisor.start(python_child("hung-agent", stubborn))
    while "up" not in this_run(supervisor, "hung-agent"):
        time.sleep(0.05)
    pid = supervisor.pid("hung-agent")
    supervisor.stop_all()
    assert supervisor.names == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_child_exiting_before_it_is_ready_fails_the_start_with_its_log(tmp_path: Path) -> None:
    fails = "import sys; print('address already in use', file=sys.stderr); sys.exit(1)"
    spec = ChildSpec(
        name="collector",
        argv=[sys.executable, "-c", fails],
        ready=port_accepts("127.0.0.1", 1),
        ready_timeout=30,
    )
    with (
        Supervisor(log_dir=tmp_path / "logs", poll_interval=0.05) as supervisor,
        pytest.raises(ChildFailedError) as failure,
    ):
        supervisor.start(spec)
    assert "exit code 1" in str(failure.value)
    assert "address already in use" in str(failure.value)


def test_child_never_ready_is_stopped_and_reported(tmp_path: Path) -> None:
    spec = ChildSpec(
        name="dashboard",
        argv=[sys.executable, "-c", "import time; time.sleep(600)"],
        ready=lambda: False,
        ready_timeout=0.5,
    )
    with Supervisor(log_dir=tmp_path / "logs", grace=1, poll_interval=0.05) as supervisor:
        with pytest.raises(ChildFailedError, match=r"not ready after 0\.5 s"):
            supervisor.start(spec)
        assert supervisor.exited() == []


# A component with a worker process of its own (as the collector has decode workers):
# on SIGTERM it tells the worker to finish (closes its stdin), waits for it, then exits.
# The worker records how it was stopped.
STOPS_ITS_WORKER = """
import signal, subprocess, sys, time
record = sys.argv[1]
worker = subprocess.Popen([sys.executable, "-c", '''
import signal, sys
record = sys.argv[1]
def on_term(*_):
    open(record, "a").write("worker killed by SIGTERM\\\\n")
    sys.exit(1)
signal.signal(signal.SIGTERM, on_term)
print("worker running", flush=True)
sys.stdin.read()
open(record, "a").write("worker stopped by its component\\\\n")
''', record], stdin=subprocess.PIPE)
def on_term(*_):
    worker.stdin.close()
    worker.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
while True:
    time.sleep(0.05)
"""


def test_a_component_stops_its_own_workers_without_them_being_killed(tmp_path: Path) -> None:
    record = tmp_path / "worker.txt"
    with Supervisor(log_dir=tmp_path / "logs", poll_interval=0.05) as supervisor:
        supervisor.start(python_child("collector", STOPS_ITS_WORKER, str(record)))
        while "worker running" not in this_run(supervisor, "collector"):
            time.sleep(0.05)
    # a SIGTERM to the whole process group killed the worker mid-task, and the collector
    # logged an ERROR ("a decode worker died") on every clean stop of the demo
    assert record.read_text().split("\n")[:-1] == ["worker stopped by its component"]


def test_a_worker_its_component_left_behind_is_killed(tmp_path: Path) -> None:
    leaves_worker = (
        "import subprocess, sys, time; "
        "w = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']); "
        "print('worker', w.pid, flush=True); time.sleep(600)"
    )
    supervisor = Supervisor(log_dir=tmp_path / "logs", grace=5, poll_interval=0.05)
    supervisor.start(python_child("agent", leaves_worker))
    while "worker" not in this_run(supervisor, "agent"):
        time.sleep(0.05)
    worker_pid = int(this_run(supervisor, "agent").split()[1])
    supervisor.stop_all()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
