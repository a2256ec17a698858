"""The SQL macros that tell which JetStream consumer serves which consumer group
(correlator/sql/01_nats_names.sql) give the answers of the rules an Agent names its
consumers with (instrumentation/wire.py): otherwise a backlog's root cause, or the
backlog a consumer_down finding names, would miss the consumer that holds it. The
same holds for the dead-letter subjects an Agent publishes to: a correlator that
missed them would take a dead letter for the workflow's next event."""

from __future__ import annotations

import itertools

import duckdb
import pytest

from correlator import connect
from instrumentation.wire import (
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_SUBJECTS,
    durable_name,
    subject_matches,
)
from store import StoreLayout

# NATS tokens may hold what a regular expression reads as syntax
PATTERN_TOKENS = ("a", "b", "*", ">", "$ops", "a+b", "x(y)")
SUBJECT_TOKENS = ("a", "b", "$ops", "a+b", "x(y)", "*", ">")


def _joined(tokens: tuple[str, ...], most: int) -> list[str]:
    return [
        ".".join(combo) for n in range(1, most + 1) for combo in itertools.product(tokens, repeat=n)
    ]


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    layout = StoreLayout.at(tmp_path_factory.mktemp("store") / "data")
    layout.ensure()
    return connect(layout.root)


def test_a_subject_pattern_matches_in_sql_as_nats_matches_it(con) -> None:
    pairs = [(p, s) for p in _joined(PATTERN_TOKENS, 3) for s in _joined(SUBJECT_TOKENS, 3)]
    sql = con.execute(
        "SELECT list_transform($pairs, lambda x: nats_subject_matches(x[1], x[2]))",
        {"pairs": [list(pair) for pair in pairs]},
    ).fetchone()[0]

    assert [pair for pair, ok in zip(pairs, sql, strict=True) if ok != subject_matches(*pair)] == []
    assert sum(sql) > 1_000  # the grid holds many matches, not only misses


@pytest.mark.parametrize("group", ["scorer", "notifier.v2", "écrivain", "a--b"])
@pytest.mark.parametrize("subject", ["recruit.cv.parsed", "recruit.*", "orders.>", "$ops.a+b"])
def test_a_consumer_group_s_durables_are_named_and_recognised_as_an_agent_names_them(
    con, group: str, subject: str
) -> None:
    durable = durable_name(group, subject)
    named, sql_serves, other = con.execute(
        """
        SELECT agent_durable_name($group, $subject),
               serves_group($durable, $subject, $group, $subject),
               serves_group($durable, $subject, 'someone_else', $subject)
        """,
        {"group": group, "subject": subject, "durable": durable},
    ).fetchone()

    assert named == durable
    assert sql_serves == subject_matches(subject, subject) and not other


def test_the_dead_letter_subjects_sql_sets_apart_are_those_an_agent_publishes_to(con) -> None:
    subjects = _joined(("dlq", "a", "dlqx", "DLQ", "*", ">"), 3)
    sql = con.execute(
        "SELECT list_transform($subjects, lambda s: is_dead_letter_subject(s))",
        {"subjects": subjects},
    ).fetchone()[0]

    assert [
        s
        for s, ok in zip(subjects, sql, strict=True)
        if ok != subject_matches(DEAD_LETTER_SUBJECTS, s)
    ] == []
    assert sum(sql) > 10  # the grid holds dead-letter subjects, not only others
    # a dead letter of a message names the subject it was first published to
    dead_letter = DEAD_LETTER_PREFIX + "recruit.cv.parsed"
    assert con.execute(
        "SELECT is_dead_letter_subject($s), dead_lettered_from($s)", {"s": dead_letter}
    ).fetchone() == (True, "recruit.cv.parsed")
