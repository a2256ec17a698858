"""One run of `choreoscope demo`: the stack, the sample pipelines, and the verdict."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from choreoscope.fault_verification import Verification, verify_findings
from choreoscope.stack import (
    StackOptions,
    collector_spec,
    correlator_spec,
    dashboard_spec,
    embedded_nats_port,
    ensure_port_free,
    nats_spec,
)
from choreoscope.stack_lock import sole_stack
from choreoscope.stack_run import (
    CRASHED,
    print_table,
    start_all,
    stop_everything,
    stop_on_signals,
    watch_until_done,
)
from choreoscope.supervisor import ChildSpec, Supervisor
from correlator import connect
from samples.faults import read_ground_truth
from store import read_retrying

DEMO_RUN_DIR = "demo"  # under the store: the ground truth and the runs started

PIPELINES = ("recruitment", "orders")
STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class DemoRun:
    data: Path
    rate: float
    faults: str
    seed: int
    step_deadline: float
    otlp_http: tuple[str, int] | None
    host: str
    port: int
    dashboard: bool
    log_level: str
    nats_port: int = 4222
    nats_port_chosen: bool = False  # by flag or variable: refused if taken, never moved

    @property
    def run_dir(self) -> Path:
        return self.data / DEMO_RUN_DIR

    @property
    def ground_truth(self) -> Path:
        return self.run_dir / "ground-truth.jsonl"

    @property
    def started_log(self) -> Path:
        return self.run_dir / "workflows.jsonl"

    def run(self, *, duration: float | None, verify: bool, settle: float | None) -> int:
        dashboard = f"http://{self.host}:{self.port}" if self.dashboard else None
        with sole_stack(self.data.expanduser().resolve(), command="demo", dashboard=dashboard):
            return self._run(duration=duration, verify=verify, settle=settle)

    def _run(self, *, duration: float | None, verify: bool, settle: float | None) -> int:
        if self.otlp_http is not None:
            ensure_port_free(*self.otlp_http, flag="--otlp-http")
        if self.dashboard:
            ensure_port_free(self.host, self.port, flag="--port", host_flag="--host")
        nats_port = embedded_nats_port(self.nats_port, chosen=self.nats_port_chosen)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.ground_truth, self.started_log):
            path.write_text("")
        options = StackOptions(
            data=self.data.resolve(),
            nats_url=f"nats://127.0.0.1:{nats_port}",
            otlp_http=self.otlp_http,
            min_deadline=self.step_deadline,
            choreography=choreography_file(),
            host=self.host,
            port=self.port,
            log_level=self.log_level,
            credentials_env={},
        )
        specs = [
            nats_spec(data=options.data, host="127.0.0.1", port=nats_port),
            collector_spec(options),
            correlator_spec(options),
            *(self._pipeline_spec(name, options, duration) for name in PIPELINES),
        ]
        if self.dashboard:
            specs.append(dashboard_spec(options))
        log_dir = options.data / "logs"
        with (
            Supervisor(log_dir=log_dir, grace=STOP_GRACE_SECONDS) as supervisor,
            stop_on_signals(supervisor) as stop,
        ):
            try:
                return self._supervise(supervisor, specs, options, stop, duration, verify, settle)
            finally:
                # the correlator first: the store keeps its findings on the pipelines
                # as they ran, not on their services going silent one by one
                stop_everything(supervisor, first=("correlator",))

    def _supervise(
        self,
        supervisor: Supervisor,
        specs: list[ChildSpec],
        options: StackOptions,
        stop: threading.Event,
        duration: float | None,
        verify: bool,
        settle: float | None,
    ) -> int:
        if (code := start_all(supervisor, specs, stop=stop)) is not None:
            return code
        print_table(specs, log_dir=supervisor.log_dir, title="choreoscope demo is running:")
        if self.dashboard:
            print(f"Open the dashboard: {options.dashboard_url}", flush=True)
        print(
            f"Injected faults are listed in {self.ground_truth}. Ctrl-C stops everything.",
            flush=True,
        )
        if watch_until_done(supervisor, stop=stop, duration=duration) == CRASHED:
            return CRASHED
        if not verify or stop.is_set():
            return 0
        wait = settle if settle is not None else 3 * self.step_deadline + 5
        print(f"traffic stopped; giving the correlator {wait:g} s to conclude", flush=True)
        if watch_until_done(supervisor, stop=stop, duration=wait) == CRASHED:
            return CRASHED
        verification = self.verification()
        print(verification.report(), flush=True)
        return 0 if verification.passed else 1

    def verification(self) -> Verification:
        """This run's ground truth against the correlator's findings."""
        con = connect(self.data)

        def read_findings() -> list[dict[str, object]]:
            cursor = con.execute(
                "select kind, workflow_id, service, subject, detail, detected_at from anomalies"
            )
            columns = [d[0] for d in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

        try:  # the correlator still writes its findings: again if one changed under the read
            findings = read_retrying(read_findings)
        finally:
            con.close()
        started = [
            json.loads(line) for line in self.started_log.read_text().splitlines() if line.strip()
        ]
        # this run began with its first workflow: a service-level finding from before
        # is an earlier run's in the same store (its services going silent as it stopped)
        since = min((datetime.fromtimestamp(w["at"], UTC) for w in started), default=None)
        return verify_findings(
            truth=read_ground_truth(self.ground_truth),
            findings=findings,
            started=[w["workflow_id"] for w in started],
            since=since,
        )

    def _pipeline_spec(self, name: str, options: StackOptions, duration: float | None) -> ChildSpec:
        argv = [
            sys.executable, "-m", f"samples.{name}",
            "--nats", options.nats_url,
            "--rate", f"{self.rate:g}",
            "--faults", self.faults,
            "--seed", str(self.seed),
            "--step-deadline", f"{self.step_deadline:g}",
            "--ground-truth", str(self.ground_truth.resolve()),
            "--started-log", str(self.started_log.resolve()),
        ]  # fmt: skip
        if duration is not None:
            argv += ["--duration", f"{duration:g}"]
        return ChildSpec(
            name=name,
            argv=argv,
            describe=f"sample pipeline, {self.rate:g} workflow/s, faults: {self.faults}",
        )


def choreography_file() -> Path:
    """The declared choreography of both sample pipelines, shipped in ``samples``."""
    return Path(str(resources.files("samples") / "choreography.yaml"))
