"""One input message writes a bounded number of ``rejected`` rows: a row per refused
span for its first ``MAX_SPAN_ROWS_PER_MESSAGE``, then one row counting the rest per
reason, whatever the format, and the good spans of the message are all stored."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import msgpack
import pytest

from collector.decoding import DecodedBatch, Payload, decode_payloads
from collector.rejects import MAX_SPAN_ROWS_PER_MESSAGE
from collector.segment_writer import SegmentWriter
from instrumentation import wire
from store import StoreLayout, open_store
from store.schema import RAW_CAP_BYTES
from tests.collector.batches import columnar_batch, otlp_json_request, otlp_request

COLUMNAR = wire.CONTENT_TYPE_COLUMNAR
PROTOBUF = wire.CONTENT_TYPE_OTLP_PROTOBUF
JSON = wire.CONTENT_TYPE_OTLP_JSON
NOW_NS = 1_780_000_000 * 10**9
SHORT_TRACE_ID = "trace_id is not 32 hex characters, or is all zeros"
ENDS_BEFORE = "span ends before it starts"
SOURCE = "nats:choreo.spans.evil"


def damaged_batch(content_type: str, n: int, damage: dict[int, str]) -> bytes:
    """``n`` spans of one message; span ``i`` in ``damage`` gets that refusal reason."""

    def spoil(set_trace_id, set_end, i: int) -> None:
        if damage.get(i) == SHORT_TRACE_ID:
            set_trace_id()
        elif damage.get(i) == ENDS_BEFORE:
            set_end()

    if content_type == COLUMNAR:
        batch = msgpack.unpackb(columnar_batch(0, n, now_ns=NOW_NS))
        for i in damage:
            spoil(
                lambda i=i: batch["trace_id"].__setitem__(i, "abc"),
                lambda i=i: batch["end_ns"].__setitem__(i, NOW_NS - 1),
                i,
            )
        return msgpack.packb(batch)
    if content_type == PROTOBUF:
        request = otlp_request(0, n, now_ns=NOW_NS)
        spans = request.resource_spans[0].scope_spans[0].spans
        for i in damage:
            spoil(
                lambda i=i: setattr(spans[i], "trace_id", b"\x01\x02"),
                lambda i=i: setattr(spans[i], "end_time_unix_nano", NOW_NS - 1),
                i,
            )
        return request.SerializeToString()
    request = otlp_json_request(0, n)
    spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for i in damage:
        spoil(
            lambda i=i: spans[i].update(traceId="abc"),
            lambda i=i: spans[i].update(endTimeUnixNano=str(NOW_NS - 1)),
            i,
        )
    for span in spans:
        if span["endTimeUnixNano"] != str(NOW_NS - 1):
            span["startTimeUnixNano"], span["endTimeUnixNano"] = str(NOW_NS), str(NOW_NS + 1)
        else:
            span["startTimeUnixNano"] = str(NOW_NS)
    return json.dumps(request).encode()


def decode(*payloads: Payload) -> DecodedBatch:
    return decode_payloads(payloads, received_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))


def message(data: bytes, content_type: str, *, stream_seq: int = 7) -> Payload:
    return Payload(data=data, content_type=content_type, source=SOURCE, stream_seq=stream_seq)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON, COLUMNAR])
def test_a_message_of_thousands_of_refused_spans_lists_100_and_counts_the_rest(
    content_type: str,
) -> None:
    # 5,300 spans: 300 good ones scattered among 5,000 refused for one of two reasons
    damage = {i: SHORT_TRACE_ID if i % 5 else ENDS_BEFORE for i in range(5_300) if i % 53 >= 3}
    data = damaged_batch(content_type, 5_300, damage)

    decoded = decode(message(data, content_type))

    good = [f"{i + 1:016x}" for i in range(5_300) if i not in damage]
    assert sorted(decoded.spans.column("span_id").to_pylist()) == good
    rows = decoded.rejected.to_pylist()
    assert len(rows) == MAX_SPAN_ROWS_PER_MESSAGE + 1
    refused = sorted(damage)
    listed, summary = rows[:-1], rows[-1]
    for row, i in zip(listed, refused, strict=False):  # the first 100, in wire order
        assert row["reason"] == damage[i]
        assert json.loads(row["raw"])["span_id"] == f"{i + 1:016x}"
        assert (row["source"], row["stream_seq"]) == (SOURCE, 7)
    rest = Counter(damage[i] for i in refused[MAX_SPAN_ROWS_PER_MESSAGE:])
    assert summary["reason"].startswith(
        f"and 4,900 more spans of this message refused: {rest[SHORT_TRACE_ID]:,} × "
        f"{SHORT_TRACE_ID}; {rest[ENDS_BEFORE]:,} × {ENDS_BEFORE}. "
    )
    assert (summary["source"], summary["stream_seq"]) == (SOURCE, 7)
    assert (summary["size"], summary["raw"]) == (len(data), data[:RAW_CAP_BYTES])
    assert decoded.summarized == (f"{SOURCE}, stream sequence 7: {summary['reason']}",)
    assert decoded.received_spans == 5_300


@pytest.mark.parametrize("refused", [1, MAX_SPAN_ROWS_PER_MESSAGE - 1, MAX_SPAN_ROWS_PER_MESSAGE])
def test_a_message_with_no_more_refused_spans_than_the_cap_has_a_row_for_each(
    refused: int,
) -> None:
    damage = dict.fromkeys(range(0, 2 * refused, 2), SHORT_TRACE_ID)
    decoded = decode(message(damaged_batch(PROTOBUF, 2 * refused + 5, damage), PROTOBUF))

    assert decoded.span_count == refused + 5
    rows = decoded.rejected.to_pylist()
    assert [r["reason"] for r in rows] == [SHORT_TRACE_ID] * refused
    assert [json.loads(r["raw"])["span_id"] for r in rows] == [f"{i + 1:016x}" for i in damage]
    assert decoded.summarized == ()


def test_the_cap_is_per_message_and_its_rows_do_not_depend_on_the_messages_around_it() -> None:
    damage = dict.fromkeys(range(150), SHORT_TRACE_ID)
    first = message(damaged_batch(COLUMNAR, 160, damage), COLUMNAR, stream_seq=1)
    second = message(damaged_batch(PROTOBUF, 160, damage), PROTOBUF, stream_seq=2)

    together = decode(first, second)

    assert together.span_count == 20
    rows = together.rejected.to_pylist()
    assert Counter(r["stream_seq"] for r in rows) == {1: 101, 2: 101}
    summaries = [r for r in rows if r["reason"].startswith("and ")]
    assert [(r["stream_seq"], r["reason"].split(".")[0]) for r in summaries] == [
        (1, f"and 50 more spans of this message refused: 50 × {SHORT_TRACE_ID}"),
        (2, f"and 50 more spans of this message refused: 50 × {SHORT_TRACE_ID}"),
    ]
    alone = decode(first).rejected.to_pylist() + decode(second).rejected.to_pylist()
    assert sorted(rows, key=repr) == sorted(alone, key=repr)


def test_a_flood_of_spans_of_the_wrong_shape_is_counted_by_column_and_type() -> None:
    batch = msgpack.unpackb(columnar_batch(0, 400, now_ns=NOW_NS))
    for i in range(300):
        batch["status_code"][i] = "ERROR" if i % 3 else [2]

    decoded = decode(message(msgpack.packb(batch), COLUMNAR))

    assert (decoded.span_count, decoded.received_spans) == (100, 400)
    rows = decoded.rejected.to_pylist()
    assert len(rows) == MAX_SPAN_ROWS_PER_MESSAGE + 1
    assert rows[0]["reason"].startswith("span of an unexpected shape (status_code is list '[2]')")
    assert rows[-1]["reason"].startswith(  # of spans 100-299: 134 "ERROR", 66 [2]
        "and 200 more spans of this message refused: "
        "134 × span of an unexpected shape (status_code is str); "
        "66 × span of an unexpected shape (status_code is list). "
    )


def test_a_flood_of_huge_attributes_stores_every_span_and_notes_100() -> None:
    batch = msgpack.unpackb(columnar_batch(0, 130, now_ns=NOW_NS))
    batch["attributes"] = [json.dumps({"llm.prompt": "x" * 9_000})] * 130

    decoded = decode(message(msgpack.packb(batch), COLUMNAR))

    assert decoded.span_count == 130
    assert set(decoded.spans.column("ingest_flags").to_pylist()) == {"attribute_truncated"}
    rows = decoded.rejected.to_pylist()
    assert len(rows) == MAX_SPAN_ROWS_PER_MESSAGE + 1
    assert rows[-1]["reason"].startswith(
        "and 30 more spans of this message refused or stored repaired: 30 × attribute "
        "values truncated (stored, flagged attribute_truncated). "
    )


def test_a_flooding_message_redelivered_is_listed_once(store_layout: StoreLayout) -> None:
    damage = dict.fromkeys(range(1_000), ENDS_BEFORE)
    payload = message(damaged_batch(PROTOBUF, 1_000, damage), PROTOBUF)
    writer = SegmentWriter(layout=store_layout)
    for minute in (0, 5):  # delivered, then again after a crash before its ack
        received_at = dt.datetime(2026, 6, 1, 12, minute, tzinfo=dt.UTC)
        writer.write("rejected", decode_payloads([payload], received_at=received_at).rejected)

    rows = (
        open_store(store_layout.root)
        .execute("select reason from rejected where reason like 'and %'")
        .fetchall()
    )
    total = open_store(store_layout.root).execute("select count(*) from rejected").fetchone()
    assert total == (MAX_SPAN_ROWS_PER_MESSAGE + 1,)
    assert [r[0].split(".")[0] for r in rows] == [
        f"and 900 more spans of this message refused: 900 × {ENDS_BEFORE}"
    ]
