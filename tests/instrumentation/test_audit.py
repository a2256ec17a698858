"""Audit capture: off by default; when on, what a step was given and what it emitted,
redacted and size-capped, on its spans."""

from __future__ import annotations

from instrumentation import Agent, semconv
from instrumentation.audit import TRUNCATED_MARK, AuditCapture
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry, only_span

FAST = {"fetch_timeout": 0.2, "drain_timeout": 5}


async def _run_scorer(nats_server, run_agents, **options):
    telemetry, spans = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=nats_server.url, telemetry=telemetry, **FAST, **options)
    done = []

    @agent.on("recruit.cv.parsed")
    async def score(event):
        await event.emit("recruit.candidate.scored", {"score": 0.82, "email": event.data["email"]})
        done.append(True)

    await run_agents(agent)
    await agent.start_workflow(
        "recruit.cv.parsed", {"email": "ada@example.com", "cv": "x" * 10_000}
    )
    await eventually(lambda: done)
    return spans


async def test_audit_is_off_by_default(nats_server, run_agents):
    spans = await _run_scorer(nats_server, run_agents)
    process = only_span(spans, "process recruit.cv.parsed")
    assert semconv.CHOREO_AUDIT_INPUT not in process["attributes"]
    publish = only_span(spans, "publish recruit.candidate.scored")
    assert semconv.CHOREO_AUDIT_OUTPUT not in publish["attributes"]


async def test_audit_records_redacted_capped_input_and_outputs(nats_server, run_agents):
    def hide_email(subject, data):
        return {**data, "email": "<redacted>"} if isinstance(data, dict) else data

    spans = await _run_scorer(
        nats_server, run_agents, audit=True, audit_max_bytes=200, redact=hide_email
    )
    process = only_span(spans, "process recruit.cv.parsed")
    recorded_input = process["attributes"][semconv.CHOREO_AUDIT_INPUT]
    assert "ada@example.com" not in recorded_input
    assert '"email":"<redacted>"' in recorded_input
    assert recorded_input.endswith(TRUNCATED_MARK)
    assert len(recorded_input.encode()) <= 200
    assert semconv.CHOREO_AUDIT_OUTPUT in process["events"]
    publish = only_span(spans, "publish recruit.candidate.scored")
    assert publish["attributes"][semconv.CHOREO_AUDIT_OUTPUT] == (
        '{"score":0.82,"email":"<redacted>"}'
    )


def test_a_failing_redaction_hook_records_a_placeholder_not_the_data():
    def broken(subject, data):
        raise KeyError("ssn")

    audit = AuditCapture(enabled=True, redact=broken)
    assert audit.render("hr.employee", {"ssn": "123"}) == "[redaction failed: KeyError]"
