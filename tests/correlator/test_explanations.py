"""Explanations read as sentences: a count of one is singular."""

from __future__ import annotations

import datetime as dt

import pytest

from correlator.explain import ago, explain

NOW = dt.datetime(2026, 11, 26, 12, 5, tzinfo=dt.UTC)
WAIT = {"service": "scorer", "subject": "recruit.cv.parsed", "message_id": "m1",
        "consumer": "scorer", "since": NOW - dt.timedelta(minutes=2)}  # fmt: skip


@pytest.mark.parametrize(
    ("finding", "reads", "never"),
    [
        ({"kind": "dead_lettered", "errors": 1, "dead_letter_source": "term"},
         "after 1 failed attempt", "attempts"),
        ({"kind": "dead_lettered", "errors": 3, "dead_letter_source": "term"},
         "after 3 failed attempts", None),
        ({"kind": "stalled", "root_cause": "consumer_down", "state": "unreceived",
          "consumer_backlog": 1}, "JetStream holds 1 message for it", "messages"),
        ({"kind": "stalled", "root_cause": "backlog", "consumer_backlog": 1,
          "backlog_sampled_at": NOW, "deadline_s": 30}, "JetStream held 1 message for it",
         "messages"),
    ],
)  # fmt: skip
def test_a_count_of_one_is_singular(finding: dict, reads: str, never: str | None) -> None:
    text = explain({**WAIT, **finding}, now=NOW)

    assert reads in text
    assert never is None or never not in text


def test_a_failure_after_several_attempts_says_when_the_last_one_ended() -> None:
    text = explain(
        {**WAIT, "kind": "failed", "errors": 3, "waited_s": 60,
         "last_attempt_end": NOW - dt.timedelta(minutes=1)},
        now=NOW,
    )  # fmt: skip

    assert "all 3 attempts to process" in text
    assert "raised, the last at 12:04:00 UTC, and no retry came" in text


@pytest.mark.parametrize(
    ("seconds", "reads"),
    [(0.25, "250 ms"), (42, "42 s"), (240, "4 min"), (9000, "2.5 h"), (816_480, "9.4 days")],
)
def test_how_long_reads_in_the_unit_a_person_would_use(seconds: float, reads: str) -> None:
    # a run quiet for nine days read "226.8 h" in `workflows` and `show`
    assert ago(seconds) == reads
