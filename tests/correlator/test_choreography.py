"""The declared choreography overrides what was learned: expected consumers,
allowed transitions, terminal events, deadlines and SLAs. The learned model can
be written out as a choreography.yaml that reads back."""

from __future__ import annotations

import pytest

import correlator
from choreoscope.cli import main
from correlator.choreography_file import (
    Choreography,
    ChoreographyFileError,
    dump_choreography,
    load_choreography,
    parse_choreography,
)
from correlator.engine import Correlator
from correlator.last_pass import read_last_pass
from correlator.model import model_as_choreography
from correlator.thresholds import Thresholds
from store import StoreLayout
from tests.correlator.pipelines import (
    PARSED,
    RECEIVED,
    SCORED,
    correlate,
    history,
    up_to_parsed,
    up_to_scored,
)
from tests.correlator.span_shapes import OurSpans, SpanLog, at

ARCHIVED = "recruit.candidate.archived"
DECLARED = f"""
version: 1
workflows:
  recruitment:
    starts_with: {RECEIVED}
    terminal: [{SCORED}]
    steps:
      {RECEIVED}:
        consumers: [parser]
        next: [{PARSED}]
      {PARSED}:
        consumers: [scorer, auditor]
        next: [{SCORED}]
        deadline: 20s
      {SCORED}:
        consumers: [notifier]
        sla: 500ms
"""


def test_declared_consumer_that_never_consumes_is_reported_dropped(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    history(log, runs=3)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=60, choreography=parse_choreography(DECLARED))

    # auditor is declared for cv.parsed but was never seen: every run waits on it
    assert {(k, s) for k, _, s in outcome.kinds()} == {("dropped", PARSED)}
    assert {a["consumer"] for a in outcome.of("dropped")} == {"auditor"}
    assert {wf for _, wf, _ in outcome.kinds()} == {"wf-0", "wf-1", "wf-2"}


def test_declared_deadline_replaces_the_floor(store_layout: StoreLayout) -> None:
    log = SpanLog()
    history(log, runs=3)
    log.write(store_layout)
    declared = parse_choreography(DECLARED)

    before = correlate(store_layout, now_s=15, choreography=declared, min_deadline_s=5)
    after = correlate(store_layout, now_s=25, choreography=declared, min_deadline_s=5)

    assert before.of("dropped") == []
    assert len(after.of("dropped")) == 3
    assert "workflow_type" in after.of("dropped")[0] and after.of("dropped")[0]["workflow_type"]


def _history_with_an_auditor_of_its_own(layout: StoreLayout, terms: str) -> Choreography:
    """Three healthy runs stored, and DECLARED with the auditor's own ``terms``."""
    log = SpanLog()
    history(log, runs=3)
    log.write(layout)
    return parse_choreography(DECLARED.replace("[scorer, auditor]", f"[scorer, auditor: {terms}]"))


def test_a_consumers_own_deadline_holds_for_it_alone(store_layout: StoreLayout) -> None:
    # the auditor's step waits 20 s for the scorer, 40 s for the auditor (never seen)
    declared = _history_with_an_auditor_of_its_own(store_layout, "{deadline: 40s}")

    before = correlate(store_layout, now_s=25, choreography=declared, min_deadline_s=5)
    after = correlate(store_layout, now_s=45, choreography=declared, min_deadline_s=5)

    assert before.of("dropped") == []
    assert {(a["consumer"], a["step"]) for a in after.of("dropped")} == {("auditor", PARSED)}
    assert len(after.of("dropped")) == 3
    steps = correlator.connect(store_layout.root).execute(
        "SELECT consumer, deadline_s FROM choreography_steps WHERE subject = ? ORDER BY 1",
        [PARSED],
    )
    assert steps.fetchall() == [("auditor", 40.0), ("scorer", 20.0)]


def test_a_model_written_out_keeps_each_consumers_deadline(store_layout: StoreLayout) -> None:
    # written with one deadline per step (the longest), a declared model gave the
    # scorer the auditor's 40 s: its lost messages were told 20 s late
    declared = _history_with_an_auditor_of_its_own(store_layout, "{deadline: 40s, sla: 9s}")
    engine = Correlator(
        data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5), choreography=declared
    )
    engine.cold_pass(now=at(60))
    text = dump_choreography(model_as_choreography(engine.model, thresholds=engine.thresholds))
    engine.close()

    (workflow,) = parse_choreography(text).workflows
    step = next(s for s in workflow.steps if s.subject == PARSED)
    assert step.consumers == ("auditor", "scorer")
    assert (step.deadline_for("scorer"), step.deadline_for("auditor")) == (20, 40)
    assert (step.sla_for("scorer"), step.sla_for("auditor")) == (None, 9)
    assert "- auditor:" in text and "- scorer" in text


def test_transition_the_declared_choreography_forbids_is_a_deviation(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    ours = history(log, runs=1)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-odd", at_s=100)
    ours.step(first, service="parser", start=100.1, end=100.4, emits=SCORED)  # skipped a step
    log.write(store_layout)
    declared = parse_choreography(DECLARED.replace("scorer, auditor", "scorer"))

    outcome = correlate(store_layout, now_s=102, choreography=declared)

    assert ("deviation", "wf-odd", SCORED) in outcome.kinds()
    detail = outcome.of("deviation")[0]["detail"]
    assert "its declared choreography does not allow" in detail
    # and what it expected instead, which the user had to look up in the file
    assert detail.endswith(f"does not allow (it expects `{PARSED}` after `{RECEIVED}`)")
    assert outcome.statuses["wf-0"][0] == "completed"


@pytest.mark.parametrize("terminal", [SCORED, f"{PARSED}, {SCORED}"])
def test_what_a_declaration_leaves_out_is_still_learned(
    store_layout: StoreLayout, terminal: str
) -> None:
    # only the name, the first and last events (a run may end at either of two) and
    # one SLA: the transitions are learned
    declared = parse_choreography(
        f"""
version: 1
workflows:
  recruitment:
    starts_with: {RECEIVED}
    terminal: [{terminal}]
    steps:
      {PARSED}:
        sla: 10s
"""
    )
    log = SpanLog()
    ours = history(log, runs=10)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-odd", at_s=100)
    ours.step(first, service="parser", start=100.1, end=100.4, emits=SCORED)  # skipped a step
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=102, choreography=declared)

    # the healthy runs follow what was learned; the odd one does not
    assert {(k, wf) for k, wf, _ in outcome.kinds()} == {("deviation", "wf-odd")}
    assert "the learned choreography does not allow" in outcome.of("deviation")[0]["detail"]
    assert outcome.statuses["wf-0"][0] == "completed"


def test_step_past_its_declared_sla_is_slow(store_layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log, runs=1)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-late", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=100.5, end=100.8, emits=SCORED)
    ours.process(scored, service="notifier", start=101.5, end=101.6)  # 0.8 s > 500 ms
    log.write(store_layout)
    declared = parse_choreography(DECLARED.replace("scorer, auditor", "scorer"))

    outcome = correlate(store_layout, now_s=130, choreography=declared)

    assert outcome.kinds() == {("slow", "wf-late", SCORED)}
    assert "past its SLA of 500 ms" in outcome.of("slow")[0]["detail"]


@pytest.mark.parametrize(
    ("sla", "notifier_ends_s", "reads"),
    [
        # "took 0.0 s from publish to done (queue 4 ms + processing 0.0 s), past its SLA
        # of 6 ms" read as if nothing had overrun
        ("6ms", 100.8094, "took 11 ms from publish to done (queue 9.0 ms + processing 2.4 ms), "
         "past its SLA of 6 ms"),
        # "took 1.7 s from publish to done (...), past its SLA of 2 s": the SLA rounded
        ("1.5s", 102.5, "took 1.7 s from publish to done (queue 9.0 ms + processing 1.7 s), "
         "past its SLA of 1.5 s"),
    ],
)  # fmt: skip
def test_a_slow_steps_explanation_reads_past_the_sla_it_names(
    store_layout: StoreLayout, sla: str, notifier_ends_s: float, reads: str
) -> None:
    log = SpanLog()
    ours = history(log, runs=1)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-late", at_s=100)
    parsed = ours.step(first, service="parser", start=100.1, end=100.4, emits=PARSED)
    scored = ours.step(parsed, service="scorer", start=100.5, end=100.8, emits=SCORED)
    ours.process(scored, service="notifier", start=100.807, end=notifier_ends_s)
    log.write(store_layout)
    declared = parse_choreography(
        DECLARED.replace("scorer, auditor", "scorer").replace("sla: 500ms", f"sla: {sla}")
    )

    outcome = correlate(store_layout, now_s=130, choreography=declared)

    (late,) = [a for a in outcome.of("slow") if a["workflow_id"] == "wf-late"]
    assert reads in late["detail"]


def test_learned_model_written_as_yaml_reads_back_and_names_the_pipeline(
    store_layout: StoreLayout, tmp_path
) -> None:
    log = SpanLog()
    history(log, runs=6)
    log.write(store_layout)
    engine = Correlator(data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=7))
    engine.cold_pass(now=at(60))
    text = dump_choreography(model_as_choreography(engine.model, thresholds=engine.thresholds))
    engine.close()
    path = tmp_path / "choreography.yaml"
    path.write_text(text)

    (workflow,) = load_choreography(path).workflows
    assert workflow.starts_with == RECEIVED
    steps = {s.subject: s for s in workflow.steps}
    assert steps[RECEIVED].consumers == ("parser",) and steps[RECEIVED].next == (PARSED,)
    assert steps[PARSED].consumers == ("scorer",) and steps[PARSED].deadline_s == 7
    assert SCORED in workflow.terminal


def test_learned_model_is_readable_through_the_views(store_layout: StoreLayout) -> None:
    log = SpanLog()
    history(log, runs=6)
    log.write(store_layout)
    correlate(store_layout, now_s=60)

    con = correlator.connect(store_layout.root)
    steps = con.execute(
        "SELECT subject, consumer, samples, source FROM choreography_steps ORDER BY 1"
    ).fetchall()
    assert steps == [
        (RECEIVED, "parser", 6, "learned"),
        (SCORED, "notifier", 6, "learned"),
        (PARSED, "scorer", 6, "learned"),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("workflows: [1, 2]", "workflows must be a mapping"),
        ("workflows:\n  w:\n    steps: {}", "starts_with must name its first event"),
        (
            "workflows:\n  w:\n    starts_with: a\n    steps:\n      a: {deadline: soon}",
            "not a duration",
        ),
        # a deadline of 0 was silently ignored, and an SLA of 0 made every step slow
        (
            "workflows:\n  w:\n    starts_with: a\n    steps:\n      a: {sla: 0s}",
            "sla is '0s': write a duration over zero",
        ),
        ("version: 9", "version 9 is not 1"),
        (
            "workflows:\n  w:\n    starts_with: a\n    steps:\n"
            "      a: {consumers: [x, {y: {timeout: 5s}}]}",
            r"consumers.y: unknown keys \['timeout'\] \(a consumer's own terms are deadline",
        ),
        (
            "workflows:\n  w:\n    starts_with: a\n    steps:\n      a: {consumers: [x, [y]]}",
            "must list consumer names, each alone or with its own terms",
        ),
        ("workflows: {w: [", "not valid YAML"),
        # PyYAML's words for a hand-edit's usual slips, said as what to fix
        (
            "workflows:\n  w:\n    starts_with: a\n   steps: {}",
            r"line 4, column 4: .* \(this line is indented unlike the lines around it\)",
        ),
        ("workflows:\n  w:\n\tstarts_with: a", r"\(a tab: YAML indents with spaces only\)"),
        # a misspelt key must not silently declare a workflow of no steps, which
        # would make every step of every run a deviation
        ("workflows:\n  w:\n    starts_with: a\n    stpes: {}", r"unknown keys \['stpes'\]"),
        ("workflows:\n  w:\n    starts_with: a\n    terminals: [b]", "unknown keys"),
        ("", "declares no workflows"),
        # a step copied to start the next and not renamed: the first silently vanished
        (
            "workflows:\n  w:\n    starts_with: a\n    steps:\n      a: {next: [b]}\n"
            "      a: {consumers: [x]}",
            r"'a' is written twice in one mapping \(lines 5 and 6\)",
        ),
        # which of the two named a run was left to chance: its findings and the
        # workflows view named it differently
        (
            "workflows:\n  w:\n    starts_with: a\n  v:\n    starts_with: a",
            "workflows 'w' and 'v' both start with 'a'",
        ),
    ],
)
def test_malformed_choreography_says_what_is_wrong_and_how_to_fix_it(
    text: str, problem: str
) -> None:
    with pytest.raises(ChoreographyFileError, match=problem) as err:
        parse_choreography(text, path="choreography.yaml")
    assert "choreoscope model --write" in str(err.value)
    assert isinstance(err.value, ValueError)


EDITED = f"""version: 1
workflows:
  recruitment:
    starts_with: {RECEIVED}
    terminal: [{SCORED}]
    steps:
      {RECEIVED}:
        consumers: [parser]
        next: [{PARSED}]
      {PARSED}:
        consumers:
        - scorer
        - auditor: {{deadline: 10m}}
        deadline: 20s
      {SCORED}:
        consumers: [notifier]
        sla: 500ms
"""


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (("sla: 500ms", "sla: 2 sec"), 17, f"steps.{SCORED}.sla is '2 sec', not a duration"),
        (("deadline: 20s", "dedline: 20s"), 14, r"unknown keys \['dedline'\]"),
        (("{deadline: 10m}", "{timeout: 10m}"), 13, r"consumers.auditor: unknown keys"),
        (("next: [", "next: {"), None, "not valid YAML at line 9"),
    ],
)
def test_a_mistake_in_a_long_choreography_names_its_line(
    tmp_path, edit: tuple[str, str], line: int | None, problem: str
) -> None:
    # "workflows.recruitment.steps.recruit.candidate.scored.sla is '2 sec'" left the user
    # to find it among every step of every workflow
    path = tmp_path / "choreography.yaml"
    path.write_text(EDITED.replace(*edit), encoding="utf-8")
    with pytest.raises(ChoreographyFileError, match=problem) as err:
        load_choreography(path)
    assert err.value.line == line
    if line is not None:
        assert str(err.value).startswith(f"{path}, line {line}: ")


def test_the_choreography_a_mistake_is_found_in_reads_without_it(tmp_path) -> None:
    path = tmp_path / "choreography.yaml"
    path.write_text(EDITED, encoding="utf-8")
    assert [s.subject for s in load_choreography(path).workflows[0].steps] == [
        RECEIVED,
        PARSED,
        SCORED,
    ]


def test_declared_durations_take_the_units_the_command_line_takes() -> None:
    text = "workflows:\n  w:\n    starts_with: a\n    steps:\n      a: {deadline: 1d, sla: 2h}"

    (workflow,) = parse_choreography(text).workflows

    assert (workflow.steps[0].deadline_s, workflow.steps[0].sla_s) == (86400.0, 7200.0)


def test_a_misspelled_declaration_is_warned_about(
    store_layout: StoreLayout, caplog: pytest.LogCaptureFixture
) -> None:
    # accepted silently, it judged nothing against what the user meant to declare
    declared = parse_choreography(
        f"""
version: 1
workflows:
  recruitment:
    starts_with: recruit.aplication.received
    terminal: [{SCORED}]
    steps:
      {PARSED}:
        consumers: [scorrer]
      {ARCHIVED}:
        consumers: [archiver]
"""
    )
    log = SpanLog()
    history(log, runs=5)
    log.write(store_layout)

    with caplog.at_level("WARNING", logger="correlator.model"):
        correlate(store_layout, now_s=102, choreography=declared)

    warned = [r.getMessage() for r in caplog.records]
    assert any("starts_with 'recruit.aplication.received'" in w for w in warned)
    assert any("no consumer group 'scorrer' handled" in w for w in warned)
    # and what to write instead, when the spans show a name close to it
    assert any(f"did you mean {RECEIVED!r}?" in w for w in warned)
    assert any("did you mean 'scorer'?" in w for w in warned)
    # a step added before anything published it is no typo of one the spans show
    (new_step,) = [w for w in warned if ARCHIVED in w]
    assert "did you mean" not in new_step and "nothing has published it yet" in new_step
    assert not any(SCORED in w for w in warned)  # what the spans show is not warned about


def test_declaring_what_follows_a_step_keeps_the_learned_ends_it_does_not_declare(
    store_layout: StoreLayout,
) -> None:
    # the scorer rejects one CV in six and publishes nothing: runs end at cv.parsed as
    # often as not, and the learned model knows it. The declaration names what follows
    # the first event and no terminal events: the ends are still learned
    log = SpanLog()
    ours = history(log, runs=30)
    for i in range(6):
        parsed = up_to_parsed(ours, f"wf-rejected-{i}", start=40.0 + i)
        ours.process(parsed, service="scorer", start=40.5 + i, end=40.8 + i)
    parsed = up_to_parsed(ours, "wf-rejected", start=100)
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(store_layout)
    declared = parse_choreography(
        f"""
version: 1
workflows:
  recruitment:
    starts_with: {RECEIVED}
    steps:
      {RECEIVED}:
        consumers: [parser]
        next: [{PARSED}]
"""
    )

    learned = correlate(store_layout, now_s=140)
    outcome = correlate(store_layout, now_s=140, choreography=declared)

    assert learned.statuses["wf-rejected"][0] == "completed"
    assert outcome.kinds() == set()
    assert outcome.statuses["wf-rejected"][0] == "completed"


def _order(ours, workflow_id: str, *, start: float, ships: bool = True) -> None:
    """orders.placed → fraud, stock and payment checks in parallel → shipping waits for
    all three results and ships after the last (a fan-in)."""
    placed = ours.publish("shop", "orders.placed", workflow_id=workflow_id, at_s=start)
    results = [
        ours.step(placed, service=check, start=start + 0.1, end=start + 0.2 + 0.1 * n,
                  emits=f"orders.{check}.checked")
        for n, check in enumerate(("fraud", "stock", "payment"))
    ]  # fmt: skip
    for result in results[:2]:
        ours.process(result, service="shipping", start=start + 0.6, end=start + 0.65)
    if ships:
        shipped = ours.step(results[2], service="shipping", start=start + 0.7,
                            end=start + 0.8, emits="orders.shipped")  # fmt: skip
        ours.process(shipped, service="mailer", start=start + 0.9, end=start + 1.0)
    else:  # every result taken, and no shipment: the fan-in lost the order
        ours.process(results[2], service="shipping", start=start + 0.7, end=start + 0.8)


def test_a_fan_ins_results_are_not_where_runs_end(store_layout: StoreLayout) -> None:
    # only the last of three results leads on to the shipment: the other two lead to
    # nothing, yet the run goes on after them. Learned as ends, they let an order the
    # fan-in lost (all three results taken, nothing shipped) read as completed
    log = SpanLog()
    ours = history(log, runs=0)
    for n in range(20):
        _order(ours, f"order-{n}", start=float(n))
    _order(ours, "order-lost", start=30.0, ships=False)
    log.write(store_layout)

    outcome = correlate(store_layout, now_s=60)

    follows = (
        correlator.connect(store_layout.root)
        .execute("SELECT DISTINCT to_subject FROM choreography_follows WHERE terminal ORDER BY 1")
        .fetchall()
    )
    assert follows == [("orders.shipped",)]
    assert outcome.statuses["order-lost"][0::2] == ("stalled", "no_next_event")
    assert outcome.statuses["order-3"][0] == "completed"


def test_a_model_written_over_a_declaration_does_not_allow_what_it_flagged(
    store_layout: StoreLayout, tmp_path
) -> None:
    # `model --choreography FILE --write OUT`: the declaration leaves the transitions to
    # learning, and one run skipped a step (a deviation). Written out as `next`, that
    # one-off was declared allowed, and OUT no longer flagged it
    declared = parse_choreography(
        f"""
version: 1
workflows:
  recruitment:
    starts_with: {RECEIVED}
    terminal: [{SCORED}]
"""
    )
    log = SpanLog()
    ours = history(log, runs=10)
    first = ours.publish("intake", RECEIVED, workflow_id="wf-odd", at_s=100)
    ours.step(first, service="parser", start=100.1, end=100.4, emits=SCORED)  # skipped a step
    log.write(store_layout)
    before = correlate(store_layout, now_s=102, choreography=declared)
    engine = Correlator(
        data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5), choreography=declared
    )
    engine.cold_pass(now=at(102))
    written = model_as_choreography(engine.model, thresholds=engine.thresholds)
    engine.close()

    steps = {s.subject: s for s in written.workflows[0].steps}
    after = correlate(
        store_layout, now_s=102, choreography=parse_choreography(dump_choreography(written))
    )

    assert steps[RECEIVED].next == (PARSED,)
    assert before.kinds() == {("deviation", "wf-odd", SCORED)}
    assert after.kinds() == before.kinds()


def _notified(ours, workflow_id: str, *, first: str, handler: str, start: float) -> None:
    """``first`` → ``handler`` → ``notify.sent``, consumed by the mailer only when
    ``workflow_id`` is not a lost one: two workflow types share the last step."""
    published = ours.publish("front", first, workflow_id=workflow_id, at_s=start)
    sent = ours.step(published, service=handler, start=start + 0.1, end=start + 0.3,
                     emits="notify.sent")  # fmt: skip
    if "lost" not in workflow_id:
        ours.process(sent, service="mailer", start=start + 0.4, end=start + 0.5)


def _two_types_sharing_a_step(layout: StoreLayout) -> None:
    log = SpanLog()
    ours = history(log, runs=0)
    for i in range(8):
        _notified(ours, f"order-{i}", first="orders.placed", handler="billing", start=i)
        _notified(ours, f"leave-{i}", first="leave.requested", handler="hr", start=20 + i)
    _notified(ours, "order-lost", first="orders.placed", handler="billing", start=90)
    log.write(layout)


SHARED = """
version: 1
workflows:
  leave:
    starts_with: leave.requested
    steps:
      notify.sent: {LEAVE}
  orders:
    starts_with: orders.placed
    steps:
      notify.sent: {ORDERS}
"""


def test_a_step_two_workflows_share_takes_what_either_declares(
    store_layout: StoreLayout,
) -> None:
    # leave declares the step's deadline, orders its consumers: read in that order, the
    # deadline was dropped with the learned rows orders' consumers replace
    _two_types_sharing_a_step(store_layout)
    text = SHARED.replace("{LEAVE}", "{deadline: 60s}").replace("{ORDERS}", "{consumers: [mailer]}")

    outcome = correlate(store_layout, now_s=120, choreography=parse_choreography(text))

    assert outcome.kinds() == set()
    assert outcome.statuses["order-lost"][0] == "in_flight"
    steps = correlator.connect(store_layout.root).execute(
        "SELECT consumer, deadline_s FROM choreography_steps WHERE subject = 'notify.sent'"
    )
    assert steps.fetchall() == [("mailer", 60.0)]


def test_two_workflows_declaring_one_step_differently_is_an_error() -> None:
    # deadlines and consumers are per subject: orders' 60 s was silently ignored for
    # leave's 5 s, and its lost notification reported dropped after 5 s
    text = SHARED.replace("{LEAVE}", "{consumers: [mailer], deadline: 5s}")
    text = text.replace("{ORDERS}", "{consumers: [mailer], deadline: 60s}")

    with pytest.raises(ChoreographyFileError) as err:
        parse_choreography(text)

    assert (
        "workflows.leave.steps.notify.sent.deadline is 5s, but "
        "workflows.orders.steps.notify.sent.deadline is 1m" in str(err.value)
    )
    assert "write the same in both, or in one only" in str(err.value)


def test_a_step_declared_with_nothing_next_makes_whatever_follows_it_a_deviation(
    store_layout: StoreLayout,
) -> None:
    # `next: []` says nothing may follow the step: it was read as no `next` at all,
    # which leaves what follows to learning, and learning allowed the notifier's new
    # event once enough runs had it
    log = SpanLog()
    ours = history(log, runs=10)
    for i in range(10):
        scored = up_to_scored(ours, f"wf-extra-{i}", start=20 + i)
        ours.step(scored, service="notifier", start=20.9 + i, end=21 + i, emits=ARCHIVED)
    log.write(store_layout)
    declared = parse_choreography(
        DECLARED.replace("scorer, auditor", "scorer").replace("sla: 500ms", "next: []")
    )

    outcome = correlate(store_layout, now_s=60, choreography=declared)

    assert {(k, s) for k, _, s in outcome.kinds()} == {("deviation", ARCHIVED)}
    assert {wf for _, wf, _ in outcome.kinds()} == {f"wf-extra-{i}" for i in range(10)}
    assert (
        f"its declared choreography does not allow: nothing may follow `{SCORED}`"
        in outcome.of("deviation")[0]["detail"]
    )
    assert outcome.statuses["wf-0"][0] == "completed"


def test_a_step_declared_with_nothing_next_is_written_out_so(
    store_layout: StoreLayout,
) -> None:
    log = SpanLog()
    history(log, runs=6)
    log.write(store_layout)
    declared = parse_choreography(DECLARED.replace("sla: 500ms", "next: []"))
    engine = Correlator(
        data_dir=store_layout.root, thresholds=Thresholds(min_deadline_s=5), choreography=declared
    )
    engine.cold_pass(now=at(60))
    text = dump_choreography(model_as_choreography(engine.model, thresholds=engine.thresholds))
    engine.close()

    steps = {s.subject: s for s in parse_choreography(text).workflows[0].steps}
    assert steps[SCORED].next == ()
    assert steps[PARSED].next == (SCORED,)
    # a step the file leaves to learning stays so
    assert parse_choreography(DECLARED).workflows[0].steps[2].next is None
    assert "next: []" in text


MISSPELT_START = f"""version: 1
workflows:
  recruitment:
    starts_with: recruit.aplication.received
    terminal: [{SCORED}]
    steps:
      {PARSED}:
        consumers: [scorer]
"""


def _correlate_once_with(layout: StoreLayout, choreography: str, tmp_path) -> int:
    path = tmp_path / "choreography.yaml"
    path.write_text(choreography, encoding="utf-8")
    return main(["correlate", "--once", "--choreography", str(path), "--data", str(layout.root)])


def test_a_misspelt_starts_with_is_refused_once_the_pipeline_has_run(
    store_layout: StoreLayout, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    # only a warning in the log: the runs silently kept their learned type name,
    # judged by none of the terms declared for them
    log = SpanLog()
    history(log, runs=5)
    log.write(store_layout)

    code = _correlate_once_with(store_layout, MISSPELT_START, tmp_path)

    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith(f"choreoscope: error: {tmp_path / 'choreography.yaml'}, line 4: ")
    assert "starts_with 'recruit.aplication.received', which no stored span carries" in error
    assert f"did you mean {RECEIVED!r}?" in error
    assert read_last_pass(store_layout) is None  # nothing was judged


def test_a_choreography_declared_before_its_pipeline_runs_still_loads(
    store_layout: StoreLayout, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no span of the workflow yet (the store holds another pipeline's): what it
    # names cannot be checked against what was published, so it is no typo yet
    log = SpanLog()
    OurSpans(log).publish("shop", "recruit.application.receivedd", workflow_id="o-1", at_s=1)
    log.write(store_layout)

    assert _correlate_once_with(store_layout, MISSPELT_START, tmp_path) == 0
    assert "error" not in capsys.readouterr().err


def test_a_start_event_no_span_shows_a_name_near_to_is_a_new_one_not_a_typo(
    store_layout: StoreLayout, tmp_path
) -> None:
    log = SpanLog()
    history(log, runs=5)
    log.write(store_layout)
    new_start = MISSPELT_START.replace("recruit.aplication.received", "recruit.referral.made")

    assert _correlate_once_with(store_layout, new_start, tmp_path) == 0
