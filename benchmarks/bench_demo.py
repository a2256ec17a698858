"""The demo end to end: is every injected fault found, how fast, and at what rate?

    python -m benchmarks demo                             # 60 s at 5 workflows/s per pipeline
    BENCH_DEMO_SECONDS=20 BENCH_DEMO_RATE=2 python -m benchmarks demo

Runs `choreoscope demo --verify` headless (nats-server, collector, correlator, both
sample pipelines) with every fault kind injected, then prints:
- precision and recall per anomaly kind against the ground truth (target: recall
  1.00 for every kind, no healthy workflow flagged);
- the workflow rate the samples sustained against the rate asked for;
- detection latency per kind: from the fault's injection to the correlator's first
  finding for its workflow (informative: it includes the step deadline, 5 s here).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from choreoscope.nats_server import free_port
from correlator import connect
from samples.faults import read_ground_truth

SECONDS = float(os.environ.get("BENCH_DEMO_SECONDS", "60"))
RATE = float(os.environ.get("BENCH_DEMO_RATE", "5"))
FAULTS = (
    "drop=0.02,hang=0.02,crash=0.02,poison=0.02,duplicate=0.02,deviation=0.02,"
    "slow=0.02,lost_telemetry=0.01,consumer_down=0.01"
)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        began = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "choreoscope.cli", "demo", "--no-dashboard", "--verify",
             "--duration", f"{SECONDS:g}", "--rate", f"{RATE:g}", "--faults", FAULTS,
             "--data", str(data), "--otlp-http", f"127.0.0.1:{free_port()}"],
            capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - began
        report = result.stdout[result.stdout.find("kind ") :]
        print(report.split("stopping")[0].rstrip() or result.stdout + result.stderr)
        started = [
            json.loads(line)
            for line in (data / "demo" / "workflows.jsonl").read_text().splitlines()
        ]
        print(
            f"\nworkflows started: {len(started)} in {SECONDS:g} s = "
            f"{len(started) / SECONDS:.1f}/s (asked: {2 * RATE:g}/s over two pipelines; "
            f"outages hold some back); run took {wall:.0f} s, exit code {result.returncode}"
        )
        print("target: recall 1.00 for every kind, 0 healthy workflows flagged")
        print_detection_latency(data)


def print_detection_latency(data: Path) -> None:
    truth = read_ground_truth(data / "demo" / "ground-truth.jsonl")
    first_finding = {
        (workflow_id, kind): detected_at.timestamp()
        for kind, workflow_id, detected_at in connect(data)
        .execute(
            "select kind, workflow_id, min(detected_at) from anomalies "
            "where workflow_id is not null group by all"
        )
        .fetchall()
    }
    latencies: dict[str, list[float]] = {}
    for fault in truth:
        found = first_finding.get((fault["workflow_id"], fault["kind"]))
        if found is not None:
            latencies.setdefault(str(fault["kind"]), []).append(found - float(fault["at"]))
    print("\ndetection latency, injection → first finding (s):")
    print(f"{'kind':<16}{'n':>5}{'p50':>8}{'max':>8}")
    for kind, values in sorted(latencies.items()):
        print(f"{kind:<16}{len(values):>5}{statistics.median(values):>8.1f}{max(values):>8.1f}")


if __name__ == "__main__":
    main()
