"""The whole product on the demo: every injected fault found, no healthy workflow flagged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from choreoscope.nats_server import free_port
from correlator import connect
from samples.faults import read_ground_truth

FAULTS = (
    "drop=0.05,hang=0.05,crash=0.05,poison=0.05,duplicate=0.05,deviation=0.05,"
    "slow=0.05,lost_telemetry=0.03,consumer_down=0.02"
)


def test_demo_finds_every_injected_fault_and_flags_no_healthy_workflow(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "choreoscope.cli", "demo", "--duration", "30", "--no-dashboard",
         "--verify", "--data", str(data), "--otlp-http", f"127.0.0.1:{free_port()}",
         "--rate", "2", "--faults", FAULTS, "--seed", "11"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "precision" in result.stdout and "recall" in result.stdout, output
    assert "per fault, with the findings of other kinds it caused" in result.stdout, output
    assert "0 missed, 0 healthy workflows flagged" in result.stdout, output
    assert result.returncode == 0, output

    # the same verdict, checked here from the files the demo left behind
    truth = read_ground_truth(data / "demo" / "ground-truth.jsonl")
    assert len({t["fault"] for t in truth}) >= 6, truth
    started = {
        json.loads(line)["workflow_id"]
        for line in (data / "demo" / "workflows.jsonl").read_text().splitlines()
    }
    findings = connect(data).execute("select kind, workflow_id, service from anomalies").fetchall()
    found = {(workflow_id, kind) for kind, workflow_id, _ in findings}
    service_gaps = {service for kind, wf, service in findings if wf is None}
    for fault in truth:
        assert (fault["workflow_id"], fault["kind"]) in found or (
            fault["kind"] == "telemetry_gap" and fault["step"] in service_gaps
        ), fault
    faulty = {t["workflow_id"] for t in truth}
    flagged = {wf for _, wf, _ in findings if wf in started}
    assert flagged <= faulty

    # the demo stops its correlator before the pipelines: no service reads as gone
    # silent for having been stopped at the end (only one a consumer_down fault stopped)
    open_silences = (
        "select service from anomalies where root_cause = 'service_silent' and resolved_at is null"
    )
    silent = connect(data).execute(open_silences).fetchall()
    stopped_by_faults = {t["step"] for t in truth if t["fault"] == "consumer_down"}
    assert {service for (service,) in silent} <= stopped_by_faults
