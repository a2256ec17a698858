"""A user's mistakes on the command line get one clear line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from choreoscope.cli import main
from choreoscope.settings import parse_count
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
    assert f"No such file or directory: {out}" in _error(capsys)


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
