"""`demo --verify`: injected faults against findings, per kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from choreoscope.fault_verification import verify_findings


def truth(workflow_id: str, fault: str, kind: str, step: str = "scorer") -> dict:
    return {"workflow_id": workflow_id, "fault": fault, "kind": kind, "step": step}


def finding(workflow_id: str | None, kind: str, service: str = "scorer") -> dict:
    return {"workflow_id": workflow_id, "kind": kind, "service": service, "detail": "why"}


STARTED = ["w1", "w2", "w3", "w4"]


def test_every_fault_found_with_its_kind_passes() -> None:
    result = verify_findings(
        truth=[truth("w1", "drop", "dropped"), truth("w2", "hang", "hung")],
        findings=[finding("w1", "dropped"), finding("w2", "hung")],
        started=STARTED,
    )
    assert result.passed
    scores = {s.kind: s for s in result.scores}
    assert scores["dropped"].recall == 1.0 and scores["hung"].precision == 1.0
    assert "PASS" in result.report()


def test_a_missed_fault_fails_and_is_named() -> None:
    result = verify_findings(
        truth=[truth("w1", "drop", "dropped"), truth("w2", "hang", "hung")],
        findings=[finding("w1", "dropped"), finding("w2", "stalled")],
        started=STARTED,
    )
    assert not result.passed
    assert [m["workflow_id"] for m in result.missed] == ["w2"]
    assert "missed: hang at scorer in workflow w2" in result.report()
    assert {s.kind: s.recall for s in result.scores}["hung"] == 0.0


def test_a_fault_found_with_the_wrong_kind_is_a_miss() -> None:
    result = verify_findings(
        truth=[truth("w1", "poison", "dead_lettered")],
        findings=[finding("w1", "slow")],
        started=STARTED,
    )
    assert not result.passed
    assert {s.kind: s.precision for s in result.scores}["slow"] == 0.0


def test_a_healthy_workflow_flagged_fails() -> None:
    result = verify_findings(
        truth=[truth("w1", "drop", "dropped")],
        findings=[finding("w1", "dropped"), finding("w3", "stalled")],
        started=STARTED,
    )
    assert not result.passed
    assert [f["workflow_id"] for f in result.healthy_flagged] == ["w3"]
    assert "healthy workflow flagged: stalled on w3" in result.report()


def test_a_stall_caused_by_an_injected_drop_is_not_a_false_finding() -> None:
    result = verify_findings(
        truth=[truth("w1", "drop", "dropped")],
        findings=[finding("w1", "dropped"), finding("w1", "stalled")],
        started=STARTED,
    )
    assert result.passed
    assert "drop: 1 of 1 found; also 1 stalled (" in result.report()


def test_hung_findings_a_duplicate_caused_are_listed_under_it_not_in_hung_precision() -> None:
    result = verify_findings(
        truth=[
            truth("w1", "duplicate", "duplicate"),
            truth("w2", "hang", "hung"),
            truth("w3", "drop", "dropped"),
        ],
        findings=[
            finding("w1", "duplicate"),
            finding("w1", "hung"),  # the duplicate's slow first attempt
            finding("w1", "hung", service="router"),
            finding("w2", "hung"),
            finding("w3", "dropped"),
            finding("w3", "hung"),  # a drop hangs nothing: a false finding
        ],
        started=STARTED,
    )

    assert result.passed  # consequences still fail nothing
    hung = {s.kind: s for s in result.scores}["hung"]
    assert (hung.findings, hung.correct_findings) == (2, 1)  # w2's, and w3's false one
    assert "duplicate: 1 of 1 found; also 2 hung (the slow first attempt)" in result.report()
    assert "hang: 1 of 1 found\n" in result.report()


def test_findings_about_workflows_of_earlier_runs_are_left_out() -> None:
    result = verify_findings(
        truth=[truth("old", "drop", "dropped"), truth("w1", "drop", "dropped")],
        findings=[finding("w1", "dropped"), finding("old-2", "stalled")],
        started=STARTED,
    )
    assert result.passed
    assert result.workflows_started == 4


def test_a_service_level_telemetry_gap_matches_the_service_that_lost_spans() -> None:
    result = verify_findings(
        truth=[truth("w2", "lost_telemetry", "telemetry_gap", step="router")],
        findings=[finding(None, "telemetry_gap", service="router")],
        started=STARTED,
    )
    assert result.passed


def test_service_level_findings_of_earlier_runs_in_the_same_store_are_left_out() -> None:
    run_began = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    earlier = {  # the last demo's services going silent as it stopped
        **finding(None, "telemetry_gap", service="fraud"),
        "detected_at": run_began - timedelta(minutes=3),
    }
    this_run = {
        **finding(None, "telemetry_gap", service="router"),
        "detected_at": run_began + timedelta(seconds=20),
    }
    result = verify_findings(
        truth=[truth("w2", "lost_telemetry", "telemetry_gap", step="router")],
        findings=[earlier, this_run],
        started=STARTED,
        since=run_began,
    )
    # a second `demo --verify` on the same data counted the first run's gaps as false
    assert {s.kind: s.precision for s in result.scores}["telemetry_gap"] == 1.0


def test_a_service_gap_covering_two_faults_counts_for_each_in_the_table() -> None:
    # two runs lost telemetry on the router; the correlator says so once, about the
    # service: the table read "detected 2 ... findings 1", as if a fault went unfound
    result = verify_findings(
        truth=[
            truth("w1", "lost_telemetry", "telemetry_gap", step="router"),
            truth("w2", "lost_telemetry", "telemetry_gap", step="router"),
        ],
        findings=[
            finding(None, "telemetry_gap", service="router"),
            finding(None, "telemetry_gap", service="fraud"),  # no fault there: false
        ],
        started=STARTED,
    )

    assert result.passed
    rows = {line.split()[0]: line.split()[1:] for line in result.report().splitlines()}
    # injected, detected, recall, findings (the router's counted twice), precision
    assert rows["telemetry_gap"] == ["2", "2", "1.00", "3", "0.67"]
    assert (
        "  telemetry_gap: 2 findings counted as 3, once for each fault covered "
        "(a finding about a whole service covers every fault injected on it)"
    ) in result.report()
