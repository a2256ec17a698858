"""A user's mistakes on the command line get one clear line, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from choreoscope.cli import build_parser, main
from choreoscope.nats_server import free_port
from choreoscope.settings import add_flags, parse_count, resolve
from instrumentation.errors import ConfigurationError
from store import StoreLayout


@pytest.fixture
def empty_store(store_layout: StoreLayout) -> str:
    return str(store_layout.root)


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_data_path_that_is_a_file_says_to_pass_the_store_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")

    assert main(["workflows", "--data", str(afile)]) == 2
    assert "is a file, not a store directory" in _error(capsys)


def test_output_into_a_folder_that_does_not_exist_names_the_path(
    empty_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nodir" / "x.csv"

    code = main(["sql", "--data", empty_store, "--format", "csv", "-o", str(out), "select 1"])

    assert code == 2
    assert f"cannot write {out}: the folder {out.parent} does not exist" in _error(capsys)


def test_an_unknown_log_level_lists_the_known_ones(
    empty_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workflows", "--data", empty_store, "--log-level", "LOUD"]) == 2
    assert "DEBUG, INFO, WARNING, ERROR" in _error(capsys)


def test_a_negative_limit_is_refused_by_the_parser(empty_store: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["workflows", "--data", empty_store, "--limit", "-1"])
    assert exit_.value.code == 2


def test_sizes_take_the_units_the_help_shows() -> None:
    assert parse_count("8GiB") == 8 * 2**30
    assert parse_count("50k") == 50_000
    assert parse_count("512") == 512
    with pytest.raises(ValueError, match="not a whole number"):
        parse_count("lots")


def test_output_piped_into_head_stops_quietly(empty_store: str) -> None:
    command = [sys.executable, "-m", "choreoscope.cli", "sql", "--data", empty_store,
               "--format", "csv", "select * from range(200000)"]  # fmt: skip
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert producer.stdout is not None
    first = producer.stdout.readline()
    producer.stdout.close()  # what `head -1` does once it has its line
    _, err = producer.communicate(timeout=60)

    assert first.strip() == b"range"
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_workflows_on_a_store_never_judged_says_what_to_run(
    empty_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workflows", "--data", empty_store]) == 0
    out = capsys.readouterr().out
    assert "no workflows yet" in out and "choreoscope correlate --once" in out


def test_workflows_after_a_pass_over_an_empty_store_does_not_say_to_run_one(
    empty_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["correlate", "--once", "--data", empty_store]) == 0
    capsys.readouterr()

    assert main(["workflows", "--data", empty_store]) == 0
    out = capsys.readouterr().out
    assert "no workflows yet" in out and "choreoscope collect" in out
    assert "correlate --once" not in out


@pytest.mark.parametrize("replicas", ["0", "1.5", "1k", "6"])
def test_a_replica_count_jetstream_cannot_take_is_refused_before_anything_starts(
    empty_store: str, replicas: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1.5 and 1k read as counts (parse_count) were cut to 1 and 1000 without a word
    code = main(["collect", "--data", empty_store, "--stream-replicas", replicas])

    assert code == 2
    assert "JetStream takes 1 to 5" in _error(capsys)


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        # 0 deleted every closed hour at the next maintenance pass; 7 kept 7 seconds
        ("--retention", "0", "has no unit"),
        ("--retention", "7", "has no unit"),
        ("--retention", "0h", "write 1h or more"),
        ("--retention", "30m", "write 1h or more"),
        ("--flush-rows", "0", "write 1 or more"),
        ("--stream-max-age", "0s", "write 1m or more"),  # 0 is no limit to JetStream
        ("--stream-max-age", "1", "has no unit"),
        ("--stream-max-bytes", "0", "write 1MiB or more"),
        ("--ack-wait", "0", "write 1s or more"),  # 0 is the server's default to JetStream
        ("--flush-interval", "0", "write 10ms or more"),
    ],
)
def test_a_zero_or_unitless_value_that_would_destroy_or_disable_is_refused(
    flag: str, value: str, says: str
) -> None:
    # resolved as `collect` resolves them; main() turns the error into one line (exit 2)
    args = build_parser().parse_args(["collect", flag, value])
    with pytest.raises(ConfigurationError) as refused:
        resolve(args, environ={})
    assert flag in str(refused.value) and says in str(refused.value)


def test_a_deadline_floor_of_zero_is_refused() -> None:
    # a step that was always quick would get a deadline of milliseconds: every run
    # would look stuck the moment it was judged
    args = build_parser().parse_args(["correlate", "--once", "--min-deadline", "0"])
    with pytest.raises(ConfigurationError) as refused:
        resolve(args, environ={})
    assert "--min-deadline" in str(refused.value) and "write 100ms or more" in str(refused.value)


def test_a_retention_with_its_unit_is_taken_as_written() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, "retention", "flush_rows")
    args = parser.parse_args(["--retention", "7d", "--flush-rows", "1"])
    resolve(args, environ={})
    assert args.retention == 7 * 86400 and args.flush_rows == 1


@pytest.mark.parametrize("url", ["http://foo:4222", "not a url", "nats://ok:4222,https://x"])
def test_a_nats_url_of_another_kind_is_refused_before_any_connect(url: str) -> None:
    # these were tried twice a second for 30 s, a warning each time
    args = build_parser().parse_args(["collect", "--nats", url])
    with pytest.raises(ConfigurationError, match=r"is not a NATS URL; write it like nats://"):
        resolve(args, environ={})


def test_nats_urls_of_every_scheme_are_taken_and_a_bare_host_port_gets_nats() -> None:
    given = "nats://a:4222, tls://b:4222,ws://c:8080,wss://u:p@d/x,e:4222"
    args = build_parser().parse_args(["up", "--nats", given])
    resolve(args, environ={})
    assert args.nats == "nats://a:4222,tls://b:4222,ws://c:8080,wss://u:p@d/x,nats://e:4222"


def test_up_against_a_nats_that_does_not_answer_says_what_to_start_before_announcing(
    tmp_path: Path,
) -> None:
    # it printed "choreoscope is up" and "Ctrl-C stops everything.", and 10 s later
    # that the correlator had exited, NATS unavailable
    url = f"nats://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "choreoscope.cli", "up", "--nats", url, "--no-dashboard",
         "--no-otlp-http", "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"no NATS server answers at {url}" in done.stderr
    assert "choreoscope nats" in done.stderr and "--nats" in done.stderr
    assert "is up" not in done.stdout and "Traceback" not in done.stderr


def test_up_with_nats_and_nats_port_says_the_port_is_for_the_embedded_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the port of a server `up` does not start would be silently ignored
    code = main(["up", "--nats", "nats://127.0.0.1:4222", "--nats-port", "5222",
                 "--no-dashboard", "--no-otlp-http", "--data", str(tmp_path / "data")])  # fmt: skip
    assert code == 2
    err = _error(capsys)
    assert "--nats-port=5222 cannot be used" in err
    assert "with --nats, leave --nats-port out" in err


@pytest.mark.parametrize("share", ["terminal_share", "min_transition_share"])
def test_a_share_over_one_is_refused_with_how_to_write_one(share: str) -> None:
    from correlator.thresholds import Thresholds

    with pytest.raises(ConfigurationError, match=r"use a share from 0 to 1"):
        Thresholds(**{share: 5.0})


COMMANDS = ("demo", "up", "nats", "collect", "correlate", "dashboard", "workflows", "show",
            "model", "sql")  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_fits_an_80_column_terminal_and_shows_how_to_run_it(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # descriptions ran to 94 columns, `workflows --status` spelt its choices twice
    # in a 119-column usage line, and `correlate --help` had no example of itself
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert f"\n  choreoscope {command}" in out


def test_python_dash_m_choreoscope_runs_the_command() -> None:
    # "'choreoscope' is a package and cannot be directly executed"
    done = subprocess.run(
        [sys.executable, "-m", "choreoscope", "show", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.startswith("usage: choreoscope show")


def test_a_demo_deadline_floor_the_correlator_refuses_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `demo --min-deadline 50ms` started nats-server, the collector and the pipelines,
    # then stopped them all when the correlator refused '0.05s' (a value never typed)
    # parsed only: were it taken, main() would start the whole demo
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["demo", "--min-deadline", "50ms"])
    assert exit_.value.code == 2
    assert "'50ms' is too short; write 100ms or more" in _error(capsys)
    assert build_parser().parse_args(["demo", "--min-deadline", "100ms"]).step_deadline == 0.1


@pytest.mark.parametrize("host", ["999.1.1.1", "no-such-host.invalid"])
def test_a_dashboard_host_that_is_no_address_here_says_to_fix_host_not_port(
    empty_store: str, host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # "that address is in use (Name or service not known); pass --port with a free one"
    code = main(["dashboard", "--data", empty_store, "--host", host, "--port", str(free_port())])

    assert code == 2
    err = _error(capsys)
    assert f"--host='{host}' cannot be used: nothing can listen on {host} here" in err
    assert "pass --host with an address of this machine" in err and "in use" not in err


def test_a_demo_settle_without_verify_is_refused_before_anything_starts() -> None:
    # `demo --settle 30s` ran the demo and ignored it: the settle is --verify's wait
    from choreoscope.commands.demo import check_options

    args = build_parser().parse_args(["demo", "--settle", "30s"])
    with pytest.raises(ConfigurationError, match=r"--settle='30s'.*add --verify and --duration"):
        check_options(args)
    check_options(build_parser().parse_args(["demo", "--settle", "30s", "--verify",
                                             "--duration", "1m"]))  # fmt: skip


def test_a_demo_duration_of_zero_is_refused_before_anything_starts() -> None:
    # `demo --duration 0s` started every component and stopped them at once
    from choreoscope.commands.demo import check_options

    for duration in ("0s", "0"):
        args = build_parser().parse_args(["demo", "--duration", duration])
        with pytest.raises(ConfigurationError, match=r"--duration=.*give a duration over zero"):
            check_options(args)


def test_a_result_file_in_a_folder_that_does_not_exist_is_named_before_the_query_runs(
    empty_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Parquet said "Failed to open local file '…'. Detail: [errno 2] …", after the query
    for name in ("x.parquet", "x.csv"):
        out = tmp_path / "nodir" / name
        assert main(["sql", "--data", empty_store, "-o", str(out), "select 1"]) == 2
        assert f"cannot write {out}: the folder {out.parent} does not exist" in _error(capsys)


def test_a_workflow_id_pasted_with_spaces_around_it_is_found(
    store_layout: StoreLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.correlator.pipelines import history
    from tests.correlator.span_shapes import SpanLog

    log = SpanLog()
    history(log, runs=1)
    log.write(store_layout)

    assert main(["show", "--data", str(store_layout.root), " wf-0 "]) == 0
    assert "workflow wf-0" in capsys.readouterr().out


def test_a_mistyped_option_is_refused_with_the_command_usage_and_the_option_meant(
    empty_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["workflows", "--data", empty_store, "--stauts", "stalled"])

    assert exit_.value.code == 2
    err = _error(capsys)
    assert "usage: choreoscope workflows" in err  # its options, not the command list
    assert "unrecognized arguments: --stauts stalled (did you mean --status?)" in err
