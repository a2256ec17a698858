"""The correlator's commands as a user runs them: correlate --once, workflows,
show, model --write."""

from __future__ import annotations

import datetime as dt
import logging
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from choreoscope.cli import main
from collector.compaction import Compactor
from correlator.choreography_file import load_choreography
from correlator.engine import Correlator
from correlator.last_pass import read_last_pass
from correlator.stored_spans import StoredSpans
from store import StoreLayout
from tests.correlator.pipelines import PARSED, RECEIVED, SCORED, history, up_to_parsed
from tests.correlator.span_shapes import OurSpans, SpanLog, at


@pytest.fixture
def unjudged_store(store_layout: StoreLayout) -> StoreLayout:
    """Eight healthy runs and one whose `recruit.cv.parsed` nobody consumed, not
    yet judged by the correlator."""
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    up_to_parsed(ours, "wf-stuck", start=100)
    log.write(store_layout)
    return store_layout


@pytest.fixture
def judged_store(unjudged_store: StoreLayout) -> StoreLayout:
    """The same, judged now (long after, so every step is past its deadline)."""
    assert main(["correlate", "--once", "--data", str(unjudged_store.root)]) == 0
    return unjudged_store


def test_correlate_once_summarizes_what_it_found(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["correlate", "--once", "--data", str(judged_store.root)]) == 0
    out = capsys.readouterr().out
    assert "1 open anomalies (1 dropped)" in out
    last = read_last_pass(judged_store)  # when the statuses were judged, for readers
    assert last is not None and not last.watching


def test_correlate_once_says_it_sends_nothing_to_the_webhook_it_was_given(
    unjudged_store: StoreLayout, caplog: pytest.LogCaptureFixture
) -> None:
    # a user who added --webhook to a one-off run waited for a POST that never came
    hook = "http://127.0.0.1:9/hooks/choreo"
    with caplog.at_level(logging.WARNING):
        assert (
            main(["correlate", "--once", "--webhook", hook, "--data", str(unjudged_store.root)])
            == 0
        )
    assert f"--webhook {hook} is not used: --once writes the findings and sends no alert" in (
        caplog.text
    )


def test_workflows_status_filter_lists_only_the_stuck_run(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    main(["workflows", "--data", str(judged_store.root), "--status", "stalled"])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3  # header, rule, one run
    assert out[2].split()[:2] == ["wf-stuck", "stalled"]
    assert f"{PARSED} → scorer" in out[2] and "dropped" in out[2]
    # how long it has been stuck, not only how long it was active
    quiet_for = out[0].index("quiet for")
    assert out[2][quiet_for:].split()[0] not in ("-", "")


def test_workflows_lists_the_completed_runs_after_the_stuck_one(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # a completed run waits on nothing: it raised a TypeError (a NaN has no len())
    capsys.readouterr()
    assert main(["workflows", "--data", str(judged_store.root), "--since", "all"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows[0].split()[:2] == ["wf-stuck", "stalled"]
    completed = [r for r in rows if r.split()[1:2] == ["completed"]]
    assert len(completed) == 8
    assert all("nan" not in r.split() and " - " in r for r in completed)


def test_workflows_limit_says_there_are_more_only_when_there_are(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    data = str(judged_store.root)
    assert main(["workflows", "--data", data, "--limit", "3", "--since", "all"]) == 0
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("wf-")]) == 3
    assert "--limit N shows more" in out
    assert main(["workflows", "--data", data, "--limit", "9", "--since", "all"]) == 0  # all 9
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("wf-")]) == 9
    assert "shows more" not in out


def test_workflows_filter_that_matches_nothing_says_what_the_store_holds(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # it printed "no workflows match", which reads as an empty store
    capsys.readouterr()
    data = str(judged_store.root)
    assert main(["workflows", "--data", data, "--status", "failed", "--since", "all"]) == 0
    out = capsys.readouterr().out
    assert out == "no failed workflows; 9 workflows in the store (1 stalled, 8 completed)\n"
    # within the default window, a day: the runs completed a day and more ago are not
    # counted, the stuck one is (however old)
    assert main(["workflows", "--data", data, "--status", "failed"]) == 0
    assert capsys.readouterr().out == (
        "no failed workflows; 1 workflow active in the last 24h or stuck (1 stalled); "
        "`--since all` counts the whole store\n"
    )


def test_workflows_lists_the_runs_of_its_window_and_the_stuck_ones_however_old(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # over all time, a listing read every stored span: 26 s and 6.7 GB on 10M spans
    data = str(judged_store.root)
    capsys.readouterr()
    assert main(["workflows", "--data", data]) == 0  # the last 24h: the runs are older
    listed = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[2:]]
    assert listed == [["wf-stuck", "stalled"]]
    reaching_them = (dt.datetime.now(dt.UTC) - at(0)).total_seconds() + 3600
    assert main(["workflows", "--data", data, "--since", f"{reaching_them:.0f}s"]) == 0
    listed = [line.split()[1] for line in capsys.readouterr().out.splitlines()[2:]]
    assert listed == ["stalled"] + ["completed"] * 8
    with pytest.raises(SystemExit) as refused:
        main(["workflows", "--data", data, "--since", "lately"])
    assert refused.value.code == 2
    assert "'lately' is not a duration; write it like 500ms" in capsys.readouterr().err


def test_workflows_with_none_in_its_window_says_how_to_look_further_back(
    store_layout: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    log = SpanLog()
    history(log, heartbeats_until=None)  # eight runs, completed a day and more ago
    log.write(store_layout)
    data = str(store_layout.root)
    assert main(["correlate", "--once", "--data", data]) == 0
    capsys.readouterr()

    assert main(["workflows", "--data", data, "--since", "2h"]) == 0
    assert capsys.readouterr().out == (
        "no workflows active in the last 2h, and none stalled or in flight: "
        "`--since 7d` or `--since all` looks further back\n"
    )


def test_workflows_status_filter_before_any_correlation_says_to_correlate_first(
    unjudged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # wf-stuck is stuck, but no pass has judged it: "no workflows match" hid that
    data = str(unjudged_store.root)
    assert (
        main(["workflows", "--data", data, "--status", "stalled", "failed", "--since", "all"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("no stalled or failed workflows; 9 workflows in the store (9 in_flight)")
    assert "run `choreoscope correlate --once`" in out


def test_workflows_before_any_correlation_lists_the_runs_however_old(
    unjudged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # unjudged, every run shows in flight, and in-flight runs are listed however old:
    # within the default day it said "no workflows yet" of a store of nine runs
    data = str(unjudged_store.root)
    capsys.readouterr()
    assert main(["workflows", "--data", data]) == 0
    listed = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[2:11]]
    assert len(listed) == 9 and {status for _, status in listed} == {"in_flight"}
    assert main(["workflows", "--data", data, "--status", "stalled"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no stalled workflows; 9 workflows in the store (9 in_flight)")


def test_workflows_of_a_type_the_store_does_not_hold_names_the_types_it_does(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    data = str(judged_store.root)
    assert main(["workflows", "--data", data, "--type", "recruit", "--since", "all"]) == 0
    out = capsys.readouterr().out
    assert out == f"no workflows of type 'recruit'; the types in the store: {RECEIVED}\n"


def _on_a_terminal(*args: str, columns: int) -> str:
    """What the command prints on a terminal ``columns`` wide (a pseudo-terminal)."""
    parent, child = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns)}
    command = [sys.executable, "-m", "choreoscope.cli", *args]
    with subprocess.Popen(command, stdout=child, stderr=child, env=env):
        os.close(child)
        out = b""
        while True:
            try:
                chunk = os.read(parent, 4096)
            except OSError:  # the command exited and closed the terminal
                break
            if not chunk:
                break
            out += chunk
    os.close(parent)
    return out.decode().replace("\r\n", "\n")


def test_workflows_on_an_80_column_terminal_fits_and_its_cut_ids_show(
    store_layout: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # 32-character ids made every row 150 columns: two lines each on a terminal
    ids = ["3f9c2a1b7e4d5f60718293a4b5c6d7e8", "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"]
    ours = history(SpanLog(), heartbeats_until=None)
    for i, wf in enumerate(ids):
        up_to_parsed(ours, wf, start=100 + i)
    ours.log.write(store_layout)
    data = str(store_layout.root)
    assert main(["correlate", "--once", "--data", data]) == 0

    out = _on_a_terminal("workflows", "--data", data, columns=80)
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[0].split()[:3] == ["workflow", "status", "quiet"]
    row = next(line for line in lines if line.startswith("3f9c"))
    assert row.split()[:2] == ["3f9c2a1b7e4d…", "stalled"]
    assert f"{PARSED} → scorer" in row and "dropped" in row
    assert "ids cut to fit" in out and "Traceback" not in out

    capsys.readouterr()
    assert main(["show", "3f9c2a1b7e4d…", "--data", data]) == 0  # as the table shows it
    assert f"workflow {ids[0]}" in capsys.readouterr().out
    assert main(["workflows", "--data", data]) == 0  # piped: every column, ids whole
    piped = capsys.readouterr().out
    assert ids[0] in piped and "svcs" in piped and "ids cut" not in piped


def test_show_draws_the_run_as_a_waterfall_with_its_anomaly(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["show", "wf-stu", "--data", str(judged_store.root)]) == 0
    out = capsys.readouterr().out
    assert "workflow wf-stuck" in out
    assert f"status   stalled, waiting on {PARSED} → scorer (dropped)" in out
    assert "then nothing since" in out and "so far" not in out
    assert "[dropped] stalled at `scorer`" in out
    hop = next(line for line in out.splitlines() if line.startswith(f"{RECEIVED} → parser"))
    assert ".###" in hop.replace(" ", "")
    assert f"{PARSED} from parser at" in out and "unconsumed" in out


def test_show_before_any_correlation_says_the_status_is_not_judged_yet(
    unjudged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # "status   in_flight" alone, for a run quiet for hours, read as "still running"
    assert main(["show", "wf-stuck", "--data", str(unjudged_store.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "status   in_flight"
    assert "not judged yet: run `choreoscope correlate --once`" in lines[2]


def test_show_after_a_pass_does_not_say_to_run_one(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["show", "wf-3", "--data", str(judged_store.root)]) == 0
    assert "not judged" not in capsys.readouterr().out
    # nor once last_pass.json is removed (which makes the next pass judge every run
    # again): the stalled run's verdict is there, and was said to be "not judged yet"
    (judged_store.findings / "last_pass.json").unlink()
    assert main(["show", "wf-stuck", "--data", str(judged_store.root)]) == 0
    out = capsys.readouterr().out
    assert "stalled" in out and "not judged" not in out


def test_show_of_a_completed_run_lists_no_message_left_unprocessed(
    store_layout: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # its last event, which nobody is expected to consume, is where it ends
    ours = OurSpans(SpanLog())
    for i in range(8):
        first = ours.publish("intake", RECEIVED, workflow_id=f"wf-{i}", at_s=float(i))
        ours.step(first, service="parser", start=i + 0.1, end=i + 0.4, emits="recruit.done")
    ours.log.write(store_layout)
    assert main(["correlate", "--once", "--data", str(store_layout.root)]) == 0
    capsys.readouterr()
    assert main(["show", "wf-1", "--data", str(store_layout.root)]) == 0
    out = capsys.readouterr().out
    assert "status   completed" in out
    assert "messages not processed" not in out


def _fan_out_store(layout: StoreLayout) -> None:
    """Eight runs whose `recruit.cv.parsed` both the scorer and the archiver process,
    then wf-no-archiver (the archiver never receives it) and wf-archiver-hangs (it
    receives it and its handler never returns); the scorer's side of each goes on to
    the end. Judged long after."""
    ours = OurSpans(SpanLog())
    runs = [(f"wf-{i}", float(i)) for i in range(8)]
    for workflow_id, start in [*runs, ("wf-no-archiver", 100.0), ("wf-archiver-hangs", 110.0)]:
        parsed = up_to_parsed(ours, workflow_id, start=start)
        scored = ours.step(parsed, service="scorer", start=start + 0.5, end=start + 0.8,
                           emits=SCORED)  # fmt: skip
        ours.process(scored, service="notifier", start=start + 0.9, end=start + 1.0)
        if workflow_id == "wf-archiver-hangs":
            ours.receive(parsed, service="archiver", at_s=start + 0.5)
        elif workflow_id != "wf-no-archiver":
            ours.process(parsed, service="archiver", start=start + 0.5, end=start + 0.7)
    ours.log.write(layout)
    assert main(["correlate", "--once", "--data", str(layout.root)]) == 0


def _waiting_lines(
    layout: StoreLayout, workflow_id: str, capsys: pytest.CaptureFixture[str]
) -> tuple[str, list[str]]:
    """What `show` printed, and the lines it lists under "messages not processed"."""
    capsys.readouterr()
    assert main(["show", workflow_id, "--data", str(layout.root)]) == 0
    out = capsys.readouterr().out
    listed = out.split("messages not processed:\n")[1:]
    return out, [line.strip() for line in "".join(listed).splitlines() if line.strip()]


def test_show_of_a_fan_out_run_stuck_on_one_branch_names_the_group_that_never_got_it(
    store_layout: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    # the scorer processed the message, the archiver never received it: its outcome
    # reads "processed", and `show` listed nothing left unprocessed under a run
    # stalled on that very step
    _fan_out_store(store_layout)

    out, waiting = _waiting_lines(store_layout, "wf-no-archiver", capsys)

    assert f"waiting on {PARSED} → archiver" in out
    (line,) = waiting
    assert line.startswith(f"{PARSED} from parser at ")
    assert line.endswith(": processed by scorer; waits on archiver (not received)")


def test_show_of_a_fan_out_run_whose_branch_hangs_says_it_was_received(
    store_layout: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    _fan_out_store(store_layout)

    _, waiting = _waiting_lines(store_layout, "wf-archiver-hangs", capsys)

    (line,) = waiting
    assert line.endswith(": processed by scorer; waits on archiver (received, never finished)")
    # a run both branches of which processed the message lists nothing
    assert _waiting_lines(store_layout, "wf-3", capsys)[1] == []


def test_show_draws_a_hop_whose_publish_span_never_arrived(
    store_layout: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    parsed = up_to_parsed(ours, "wf-orphan", start=100)
    log.rows = [r for r in log.rows if r["span_id"] != parsed.span_id]  # the publish is lost
    ours.process(parsed, service="scorer", start=100.5, end=100.8)
    log.write(store_layout)
    capsys.readouterr()

    assert main(["show", "wf-orphan", "--data", str(store_layout.root)]) == 0
    out = capsys.readouterr().out
    hop = next(line for line in out.splitlines() if line.startswith(f"{PARSED} → scorer"))
    assert hop.endswith("?+300ms")  # no publish: the queue wait is unknown


def test_show_of_an_unknown_workflow_says_how_to_list_them(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", "nope", "--data", str(judged_store.root)]) == 2
    assert "choreoscope workflows" in capsys.readouterr().err


def test_show_of_an_id_start_several_runs_share_names_them(
    store_layout: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = OurSpans(SpanLog())
    for wf in ("wf-1", "wf-10", "wf-11"):
        ours.publish("intake", RECEIVED, workflow_id=wf, at_s=1.0)
    ours.log.write(store_layout)
    capsys.readouterr()
    assert main(["show", "wf-1", "--data", str(store_layout.root)]) == 0  # a whole id
    assert "workflow wf-1 " in capsys.readouterr().out
    assert main(["show", "wf-", "--data", str(store_layout.root)]) == 2
    # all three named, without a '…' that says there are more
    assert "matches several workflows (wf-1, wf-10, wf-11): give" in capsys.readouterr().err


def test_model_write_produces_a_choreography_that_correlate_accepts(
    judged_store: StoreLayout,
    tmp_path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "choreography.yaml"
    data = str(judged_store.root)
    assert main(["model", "--write", str(path), "--data", data, "--min-deadline", "12s"]) == 0
    (workflow,) = load_choreography(path).workflows
    assert [s.subject for s in workflow.steps][:2] == [RECEIVED, PARSED]
    assert {s.deadline_s for s in workflow.steps} == {12.0}

    assert main(["model", "--write", str(path), "--data", data]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["correlate", "--once", "--data", data, "--choreography", str(path)]) == 0
    # judged with a declared choreography: a pass without it says what it changes
    with caplog.at_level(logging.WARNING, logger="choreoscope.correlate"):
        assert main(["correlate", "--once", "--data", data]) == 0
        # naming the file it judged with (a demo user never wrote one to remember)
        assert f"Pass --choreography {path} (the one the last pass judged with)" in caplog.text
        caplog.clear()
        assert main(["correlate", "--once", "--data", data]) == 0  # learned already
        assert "Pass --choreography" not in caplog.text


def test_model_write_keeps_the_deadline_floor_the_correlator_judged_with(
    unjudged_store: StoreLayout,
    tmp_path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the demo judges with a 5s floor; `model --write` learned with 30s, so declaring
    # the file it wrote silently raised every deadline the correlator had judged with
    path = tmp_path / "choreography.yaml"
    data = str(unjudged_store.root)
    assert main(["model", "--write", str(path), "--data", data]) == 0  # judged by none
    (workflow,) = load_choreography(path).workflows
    assert {s.deadline_s for s in workflow.steps} == {30.0}
    assert "no shorter than 30s (the default" in capsys.readouterr().out

    assert main(["correlate", "--once", "--data", data, "--min-deadline", "7s"]) == 0
    capsys.readouterr()
    assert main(["model", "--write", str(path), "--force", "--data", data]) == 0
    (workflow,) = load_choreography(path).workflows
    assert {s.deadline_s for s in workflow.steps} == {7.0}
    said = capsys.readouterr().out
    assert "no shorter than 7s (the floor the correlator last judged this store with" in said
    assert "Learned with step deadlines no shorter than 7s" in path.read_text()

    # printed, the YAML stays YAML: where the floor came from goes to stderr
    assert main(["model", "--data", data]) == 0
    printed = capsys.readouterr()
    assert "choreoscope model" not in printed.out
    assert "no shorter than 7s (the floor the correlator" in printed.err

    # the user's own floor always wins
    assert main(["model", "--write", str(path), "--force", "--data", data,
                 "--min-deadline", "12s"]) == 0  # fmt: skip
    (workflow,) = load_choreography(path).workflows
    assert {s.deadline_s for s in workflow.steps} == {12.0}
    assert "no shorter than 12s (from --min-deadline)" in capsys.readouterr().out
    monkeypatch.setenv("CHOREOSCOPE_MIN_DEADLINE", "9s")  # as does the variable
    assert main(["model", "--write", str(path), "--force", "--data", data]) == 0
    assert "no shorter than 9s (from CHOREOSCOPE_MIN_DEADLINE)" in capsys.readouterr().out


def test_model_of_a_store_judged_with_a_declared_choreography_says_to_pass_it(
    judged_store: StoreLayout, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    # on the demo's store, `model --write` named the types `recruit.application.received`
    # and `orders.created`, not the `recruitment` and `orders` that `workflows` showed,
    # without a word; declared, the file then renamed every run
    path = tmp_path / "choreography.yaml"
    data = str(judged_store.root)
    assert main(["model", "--write", str(path), "--data", data]) == 0
    assert main(["correlate", "--once", "--data", data, "--choreography", str(path)]) == 0
    with caplog.at_level(logging.WARNING, logger="choreoscope.model"):
        assert main(["model", "--data", data]) == 0
        assert f"Pass --choreography {path} (the one the last pass judged with) to start" in (
            caplog.text
        )
        caplog.clear()
        assert main(["model", "--data", data, "--choreography", str(path)]) == 0
        assert "Pass --choreography" not in caplog.text


def test_correlate_needs_watch_or_once(judged_store: StoreLayout) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["correlate", "--data", str(judged_store.root)])
    assert exit_.value.code == 2


def test_broken_choreography_file_is_refused_with_the_reason(
    judged_store: StoreLayout, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "choreography.yaml"
    path.write_text("workflows:\n  w:\n    starts_with: a\n    steps:\n      a: {deadline: soon}\n")
    code = main(["correlate", "--once", "--data", str(judged_store.root),
                 "--choreography", str(path)])  # fmt: skip
    assert code == 2
    assert "deadline is 'soon', not a duration" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "says"),
    [
        # a traceback (UnicodeDecodeError): an editor that saves UTF-16
        ("workflows: {}\n".encode("utf-16"), "not UTF-8 text (byte 0); save it as UTF-8"),
        # PyYAML's four lines, naming the file "<unicode string>"
        (b"workflows: [\n  - a: b\n", "not valid YAML at line 2, column 3: expected the node"),
    ],
)
def test_a_choreography_file_that_is_not_utf8_yaml_is_refused_in_one_line(
    judged_store: StoreLayout, tmp_path, capsys: pytest.CaptureFixture[str], content, says
) -> None:
    path = tmp_path / "choreography.yaml"
    path.write_bytes(content)
    code = main(["correlate", "--once", "--data", str(judged_store.root),
                 "--choreography", str(path)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"{path}: {says}" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_model_written_into_a_folder_that_does_not_exist_says_so(
    judged_store: StoreLayout, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nodir" / "choreography.yaml"

    assert main(["model", "--data", str(judged_store.root), "--write", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"the folder {out.parent} does not exist" in err
    assert "Traceback" not in err


def test_correlate_once_tells_its_progress_on_a_long_pass(
    unjudged_store: StoreLayout, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pass over a week of spans takes minutes: as if every millisecond were 30 s
    monkeypatch.setattr(sys.modules["correlator.watch"], "PROGRESS_EVERY_S", 0.001)
    caplog.set_level(logging.INFO, logger="correlator.watch")
    assert main(["correlate", "--once", "--data", str(unjudged_store.root)]) == 0
    said = [r.getMessage() for r in caplog.records if r.name == "correlator.watch"]
    doing = f"judging the spans stored in {unjudged_store.root}"
    assert said[0] == doing
    assert any(m.startswith(f"still {doing} (") for m in said)
    assert said[-1].startswith(f"done {doing} in ")


def test_correlate_once_tells_readers_it_is_judging_and_keeps_the_last_pass_meanwhile(
    judged_store: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = read_last_pass(judged_store)
    seen = []
    judge = Correlator.cold_pass

    def watched(engine: Correlator, **kwargs: object) -> object:
        seen.append(read_last_pass(judged_store))  # what a dashboard reads meanwhile
        return judge(engine, **kwargs)

    monkeypatch.setattr(Correlator, "cold_pass", watched)
    assert main(["correlate", "--once", "--data", str(judged_store.root)]) == 0
    (meanwhile,) = seen
    assert meanwhile is not None and meanwhile.judging_since is not None
    # the pass it resumes from is kept as it was
    assert (meanwhile.as_of, meanwhile.judged_with) == (before.as_of, before.judged_with)
    after = read_last_pass(judged_store)
    assert after.judging_since is None and after.as_of > before.as_of


def test_model_and_correlate_once_read_again_when_compaction_retires_what_they_listed(
    store_layout: StoreLayout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a long pass lists the segments, then compaction merges them and, its grace
    # over, deletes them: the pass failed with DuckDB's "No such file"
    log = SpanLog()
    ours = history(log, heartbeats_until=None)
    log.write(store_layout)
    log.rows.clear()
    up_to_parsed(ours, "wf-stuck", start=100)
    log.write(store_layout)  # a second segment of the hour: compaction merges the two
    listing = StoredSpans.segments
    retired: list[str] = []

    def listed_then_compacted(self: StoredSpans) -> frozenset[str]:
        listed = listing(self)
        compactor = Compactor(layout=store_layout, grace=0, settle=0)
        try:
            later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
            compactor.run_once(now=later)  # merges
            compactor.run_once(now=later + dt.timedelta(seconds=1))  # deletes the inputs
        finally:
            compactor.close()
        retired.extend(s for s in listed if not Path(s).exists())
        return listed

    monkeypatch.setattr(StoredSpans, "segments", listed_then_compacted)
    data = str(store_layout.root)

    assert main(["model", "--data", data]) == 0
    assert f"{PARSED}:" in capsys.readouterr().out
    assert main(["correlate", "--once", "--data", data]) == 0
    assert main(["workflows", "--data", data, "--status", "stalled"]) == 0

    assert len(retired) == 2  # the first listing's two segments were gone when read
    assert "wf-stuck" in capsys.readouterr().out


def test_sql_since_scopes_the_views_over_spans_to_the_window_and_the_stuck_runs(
    judged_store: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(judged_store.root)
    query = "select workflow_id, status from workflows order by workflow_id"
    capsys.readouterr()
    assert main(["sql", "--data", data, "--format", "csv", query]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 9  # header, every run
    # the runs completed a day ago are out of the last 2h; the stalled one stays
    assert main(["sql", "--data", data, "--format", "csv", "--since", "2h", query]) == 0
    assert capsys.readouterr().out.splitlines() == ["workflow_id,status", "wf-stuck,stalled"]
    # the spans view itself is not cut
    assert main(["sql", "--data", data, "--since", "2h", "select count(*) > 20 from spans"]) == 0
    assert "| True " in capsys.readouterr().out


def test_correlate_once_on_a_mistyped_data_path_says_so_and_leaves_nothing_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "choreoscope-dat"

    assert main(["correlate", "--once", "--data", str(typo)]) == 2

    assert f"no choreoscope store at {typo}" in capsys.readouterr().err
    assert not typo.exists()
