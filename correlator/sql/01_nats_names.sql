-- Which JetStream consumer serves which consumer group, as SQL macros: the one rule
-- the detection statements (the backlog of 40_delivery_findings, the dead-letter
-- evidence of 30_deliveries) and the backlog a consumer_down finding names
-- (engine_sql/consumer_backlog.sql) share. They follow instrumentation/wire.py's
-- subject_matches and durable_name, which an Agent names its consumers with;
-- tests/correlator/test_nats_names.py holds the two to the same answers.
-- Below them, the dead-letter subjects an Agent publishes to (wire.py's
-- DEAD_LETTER_PREFIX), named once for every statement that sets them apart.

-- The token lists of a pattern and a subject: see nats_subject_matches.
CREATE OR REPLACE MACRO nats_tokens_match(p, s) AS
    CASE WHEN list_position(p, '>') > 0
        THEN len(s) >= list_position(p, '>')
            AND coalesce(list_bool_and(list_transform(
                range(1, list_position(p, '>')),
                lambda i: p[i] = s[i] OR (p[i] = '*' AND s[i] <> '>')
            )), true)
        ELSE len(s) = len(p)
            AND coalesce(list_bool_and(list_transform(
                range(1, len(p) + 1),
                lambda i: p[i] = s[i] OR (p[i] = '*' AND s[i] <> '>')
            )), true)
    END;

-- Whether NATS subject pattern `pattern` (`*` one token, `>` one or more from there
-- on) covers `subject`. A wildcard in `subject` is covered only by one as wide.
CREATE OR REPLACE MACRO nats_subject_matches(pattern, subject) AS
    nats_tokens_match(string_split(pattern, '.'), string_split(subject, '.'));

-- The durable consumer an Agent creates for consumer group `grp` and filter subject
-- `filter`: `scorer--recruit_cv_parsed`.
CREATE OR REPLACE MACRO agent_durable_name(grp, filter) AS regexp_replace(
    grp || '--' || replace(replace(replace(filter, '.', '_'), '*', 'STAR'), '>', 'ALL'),
    '[^A-Za-z0-9_-]', '_', 'g'
);

-- Whether JetStream consumer `durable` is named after consumer group `grp`: the
-- group's own name, or an Agent's durable for it, whatever its filter (no
-- subject holds '--').
CREATE OR REPLACE MACRO named_after_group(durable, grp) AS
    durable = grp
    OR (starts_with(durable, regexp_replace(grp, '[^A-Za-z0-9_-]', '_', 'g') || '--')
        AND NOT contains(
            substr(durable, length(regexp_replace(grp, '[^A-Za-z0-9_-]', '_', 'g')) + 3), '--'
        ));

-- Whether JetStream consumer `durable`, filtering on `filters` (comma-separated;
-- none: every subject of its stream), delivers `subject` to consumer group `grp`.
CREATE OR REPLACE MACRO serves_group(durable, filters, grp, subject) AS
    CASE WHEN coalesce(filters, '') = '' THEN durable = grp
        ELSE list_bool_or(list_transform(
            string_split(filters, ','),
            lambda f: (durable = grp OR durable = agent_durable_name(grp, f))
                AND nats_subject_matches(f, coalesce(subject, ''))
        ))
    END;

-- The prefix of the subject an Agent dead-letters a message of `subject` to:
-- `dlq.<subject>`.
CREATE OR REPLACE MACRO dead_letter_prefix() AS 'dlq.';

-- Whether `subject` is a dead-letter subject; null for a null subject, so that a
-- filter on `NOT is_dead_letter_subject(s)` keeps only subjects known not to be one.
CREATE OR REPLACE MACRO is_dead_letter_subject(subject) AS
    starts_with(subject, dead_letter_prefix());

-- The subject a message on dead-letter subject `subject` was first published to.
CREATE OR REPLACE MACRO dead_lettered_from(subject) AS
    substr(subject, length(dead_letter_prefix()) + 1);
