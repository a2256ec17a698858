"""Wire names shared by the instrumentation and the collector: subjects, headers,
stream and content types. DESIGN.md's wire contract is the prose form of this file.
"""

from __future__ import annotations

import re
from typing import Final

# --- subjects and streams ---------------------------------------------------
SPANS_STREAM: Final = "CHOREO_SPANS"
SPANS_SUBJECT_PREFIX: Final = "choreo.spans."
SPANS_SUBJECTS: Final = "choreo.spans.>"
# Limits of CHOREO_SPANS when it is created. Whoever creates it first (an exporter or
# the collector) bounds it, so an exporter started before the collector never leaves
# an unbounded stream behind. The collector's --stream-max-age/-bytes override these.
SPANS_STREAM_MAX_AGE_S: Final = 86400.0
SPANS_STREAM_MAX_BYTES: Final = 8 * 2**30
HEARTBEAT_SUBJECT_PREFIX: Final = "choreo.heartbeat."
HEARTBEAT_SUBJECTS: Final = "choreo.heartbeat.>"
ALERTS_SUBJECT_PREFIX: Final = "choreo.alerts."
DEAD_LETTER_PREFIX: Final = "dlq."
DEAD_LETTER_SUBJECTS: Final = "dlq.>"
# The Agent keeps dead letters durable in this stream (created if missing).
DEAD_LETTER_STREAM: Final = "CHOREO_DEAD_LETTERS"
# The Agent's default stream for business events (created if missing; an Agent
# adds the subjects it needs to it, as "<first token>.>").
EVENTS_STREAM: Final = "CHOREO_EVENTS"
ADVISORY_PREFIX: Final = "$JS.EVENT.ADVISORY."
ADVISORY_MAX_DELIVERIES: Final = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
ADVISORY_TERMINATED: Final = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED"
ADVISORY_NAKED: Final = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED"

# --- headers ---------------------------------------------------------------
# W3C names are written lowercase; every header is read case-insensitively.
TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
BAGGAGE: Final = "baggage"
MSG_ID: Final = "Nats-Msg-Id"
WORKFLOW_ID: Final = "Choreo-Workflow-Id"
EXPORTER_ID: Final = "Choreo-Exporter-Id"
BATCH_SEQ: Final = "Choreo-Batch-Seq"
SPANS_DROPPED: Final = "Choreo-Spans-Dropped"
CONTENT_TYPE: Final = "Content-Type"
DEAD_LETTER_REASON: Final = "Choreo-Dead-Letter-Reason"
DEAD_LETTER_SERVICE: Final = "Choreo-Dead-Letter-Service"  # the service that gave up
DEAD_LETTER_DELIVERIES: Final = "Choreo-Dead-Letter-Deliveries"  # deliveries tried
DEAD_LETTER_STREAM_SEQ: Final = "Choreo-Dead-Letter-Stream-Seq"  # original "<stream>:<seq>"
IGNORED_HEADER_PREFIX: Final = "Nats-Trace-"

# Span batches: Choreo-Batch-Seq counts 1, 2, 3, ... per exporter id (a retried
# batch keeps its number, and Nats-Msg-Id "<exporter id>-<seq>" lets JetStream
# drop the copy); Choreo-Spans-Dropped is the exporter's running total of spans it
# dropped, as of that batch.

# --- payload formats of a span batch on CHOREO_SPANS ----------------------------
CONTENT_TYPE_OTLP_PROTOBUF: Final = "application/x-protobuf"
CONTENT_TYPE_OTLP_JSON: Final = "application/json"
CONTENT_TYPE_COLUMNAR: Final = "application/vnd.choreoscope.spans+msgpack"
COLUMNAR_VERSION: Final = 1


# --- names and subject patterns --------------------------------------------
# The correlator reads these too (which JetStream consumer serves which group):
# they live here, free of the NATS client, so it need not import one.
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_-]")


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether NATS subject ``pattern`` (with ``*`` and ``>``) covers ``subject``.

    A wildcard ``subject`` is covered only by a pattern at least as wide.
    """
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for i, token in enumerate(pattern_tokens):
        if token == ">":
            return len(subject_tokens) > i
        if i >= len(subject_tokens):
            return False
        if token == "*":
            if subject_tokens[i] == ">":
                return False
            continue
        if token != subject_tokens[i]:
            return False
    return len(pattern_tokens) == len(subject_tokens)


def durable_name(queue: str, subject: str) -> str:
    """One durable consumer per (queue group, subject): ``scorer--recruit_cv_parsed``."""
    readable = subject.replace(".", "_").replace("*", "STAR").replace(">", "ALL")
    return _NOT_A_NAME.sub("_", f"{queue}--{readable}")
