"""The correlator benchmark's store, generated in DuckDB SQL (vectorized, not span
by span): per workflow 10 spans shaped like choreoscope's instrumentation (intake →
parser → scorer → notifier; trace, span, workflow and message ids as random-looking
hex of the instrumentation's widths), 2% of workflows with a fault (dropped, hung,
failed, duplicate), written as Parquet segments in arrival order, as the collector
does.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import duckdb

from store import StoreLayout

SPANS_PER_WORKFLOW = 10
FAULT_EVERY = 50  # 2 %

# k, operation, kind, service, subject, parent k, link k, offset ms, duration ms, message of k
TEMPLATE = """
SELECT * FROM (VALUES
 (0, 'send',    'producer', 'intake',   'recruit.application.received', NULL, NULL,   0,   1, 0),
 (1, 'receive', 'client',   'parser',   'recruit.application.received', 0,    0,    100,  0, 0),
 (2, 'process', 'consumer', 'parser',   'recruit.application.received', 0,    0,    100, 300, 0),
 (3, 'settle',  'client',   'parser',   'recruit.application.received', 2,    NULL, 400,  0, 0),
 (4, 'send',    'producer', 'parser',   'recruit.cv.parsed',            2,    NULL, 398,  1, 4),
 (5, 'receive', 'client',   'scorer',   'recruit.cv.parsed',            4,    4,    500,  0, 4),
 (6, 'process', 'consumer', 'scorer',   'recruit.cv.parsed',            4,    4,    500, 300, 4),
 (7, 'settle',  'client',   'scorer',   'recruit.cv.parsed',            6,    NULL, 800,  0, 4),
 (8, 'send',    'producer', 'scorer',   'recruit.candidate.scored',     6,    NULL, 798,  1, 8),
 (9, 'process', 'consumer', 'notifier', 'recruit.candidate.scored',     8,    8,    900, 100, 8),
 (10,'process', 'consumer', 'scorer',   'recruit.cv.parsed',            4,    4,   5000, 300, 4)
) AS t(k, operation, kind, service, subject, parent_k, link_k, offset_ms, dur_ms, msg_k)
"""

# fault per workflow: 0 none, 1 dropped (nothing after k4), 2 hung (receive only),
# 3 failed (k6 raises, nothing after), 4 duplicate (k10: a second processing)
SPANS_SQL = """
WITH wf AS (
    SELECT i,
           $start + to_microseconds(CAST((i - $first) * $step_us AS BIGINT)) AS t0,
           CASE WHEN i % $fault_every = 0 THEN 1 + (i // $fault_every) % 4 ELSE 0 END AS fault
    FROM range($first, $first + $n) AS r(i)
), t AS ({template}),
rows AS (
    SELECT wf.*, t.* FROM wf CROSS JOIN t
    WHERE (t.k < 10 OR wf.fault = 4)
      AND NOT (wf.fault = 1 AND t.k >= 5)
      AND NOT (wf.fault = 2 AND t.k >= 6)
      AND NOT (wf.fault = 3 AND t.k >= 7)
)
SELECT
    md5('t' || i) AS trace_id,
    left(md5('s' || (i * 16 + k)), 16) AS span_id,
    CASE WHEN parent_k IS NOT NULL THEN left(md5('s' || (i * 16 + parent_k)), 16) END
        AS parent_span_id,
    CASE operation WHEN 'send' THEN 'publish' WHEN 'settle' THEN 'ack' ELSE operation END
        || ' ' || subject AS name,
    kind,
    service AS service_name,
    service || '-1' AS service_instance_id,
    'choreoscope' AS scope_name,
    t0 + to_microseconds(offset_ms * 1000) AS start_time,
    t0 + to_microseconds((offset_ms + dur_ms) * 1000) AS end_time,
    CAST(dur_ms AS DOUBLE) AS duration_ms,
    CASE WHEN fault = 3 AND k = 6 THEN 'error' ELSE 'unset' END AS status_code,
    CASE WHEN fault = 3 AND k = 6 THEN 'ValueError: unreadable CV' END AS status_message,
    '{{"messaging.system":"nats"}}' AS attributes,
    '{{"service.name":"' || service || '"}}' AS resource,
    CAST(NULL AS VARCHAR) AS events,
    -- as the collector stores our instrumentation's links: JSON, first link's ids apart
    CASE WHEN link_k IS NOT NULL
        THEN '[{{"trace_id":"' || md5('t' || i) || '","span_id":"'
            || left(md5('s' || (i * 16 + link_k)), 16) || '","attributes":{{}}}}]'
    END AS links,
    md5('w' || i) AS workflow_id,
    subject,
    md5('m' || (i * 16 + msg_k)) AS message_id,
    operation,
    CASE WHEN kind <> 'producer' THEN service END AS consumer_group,
    CASE WHEN link_k IS NOT NULL THEN md5('t' || i) END AS link_trace_id,
    CASE WHEN link_k IS NOT NULL THEN left(md5('s' || (i * 16 + link_k)), 16) END AS link_span_id,
    t0 + to_microseconds((offset_ms + dur_ms + 1000) * 1000) AS received_at,
    'bench' AS exporter_id,
    CAST(NULL AS VARCHAR) AS ingest_flags
FROM rows
"""


def workflow_id(number: int) -> str:
    """The id of generated workflow ``number``: 32 hex digits, as the instrumentation
    makes them (random-looking ids: sequential ones share a prefix, which makes every
    string comparison in DuckDB slower than real ids would)."""
    return hashlib.md5(f"w{number}".encode()).hexdigest()


def write_spans(
    con: duckdb.DuckDBPyConnection,
    layout: StoreLayout,
    *,
    first: int,
    n: int,
    start: dt.datetime,
    step_us: float,
    segments: int,
    tag: str,
) -> int:
    """Generate workflows ``first … first+n`` and write them as ``segments`` files."""
    sql = SPANS_SQL.format(template=TEMPLATE)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE gen AS {sql} ORDER BY received_at",
        {"start": start, "step_us": step_us, "fault_every": FAULT_EVERY, "first": first, "n": n},
    )
    (total,) = con.execute("SELECT count(*) FROM gen").fetchone()
    folder = layout.partition_dir("spans", start)
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-total // segments)
    for s in range(segments):
        path = folder / f"{tag}-{s:04d}.parquet"
        con.execute(
            f"COPY (SELECT * FROM gen LIMIT {per} OFFSET {s * per}) TO '{path}' "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
    return total
