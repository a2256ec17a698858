"""Decoding span batches of every accepted format into rows of the spans table, and
refusing what cannot be stored while keeping the good spans of the same batch."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence

import msgpack
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from collector.decoding import DecodedBatch, Payload, decode_payloads
from collector.segment_writer import SegmentWriter
from collector.span_batch import MAX_ATTRIBUTE_CHARS
from instrumentation import semconv, wire
from instrumentation.columnar_encoding import encode_columnar_batch
from store import StoreLayout, open_store
from store.schema import RAW_CAP_BYTES, SPANS
from tests.collector.batches import columnar_batch, otlp_json_request, otlp_request

COLUMNAR = wire.CONTENT_TYPE_COLUMNAR
PROTOBUF = wire.CONTENT_TYPE_OTLP_PROTOBUF
JSON = wire.CONTENT_TYPE_OTLP_JSON
NOW_NS = 1_780_000_000 * 10**9


def decode(data: bytes, content_type: str | None) -> DecodedBatch:
    return decode_payloads([Payload(data=data, content_type=content_type, source="test")])


def comparable(batch: DecodedBatch) -> list[dict]:
    ignored = {"received_at", "attributes", "resource", "scope_name", "exporter_id", "links"}
    return [
        {k: v for k, v in row.items() if k not in ignored}
        for row in batch.spans.sort_by("span_id").to_pylist()
    ]


def test_columnar_batch_becomes_spans_with_promoted_columns() -> None:
    batch = decode(columnar_batch(0, 3, now_ns=NOW_NS), COLUMNAR)
    assert batch.spans.schema == SPANS
    row = batch.spans.to_pylist()[0]
    assert row["kind"] == "consumer"
    assert row["status_code"] == "unset"
    assert row["service_name"] == "scorer"
    assert row["subject"] == "recruit.cv.parsed"
    assert row["message_id"] == "msg-0"
    assert row["workflow_id"] == "wf-0"
    assert row["operation"] == "process"
    assert row["consumer_group"] == "scorer"
    assert row["duration_ms"] == 2.0
    assert json.loads(row["attributes"])["messaging.nats.delivery_count"] == 1
    assert batch.reject_count == 0


def test_otlp_protobuf_json_and_columnar_give_the_same_rows() -> None:
    columnar = decode(columnar_batch(0, 5, now_ns=NOW_NS), COLUMNAR)
    protobuf = decode(otlp_request(0, 5, now_ns=NOW_NS).SerializeToString(), PROTOBUF)
    request = otlp_json_request(0, 5)
    for span in request["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["startTimeUnixNano"], span["endTimeUnixNano"] = str(NOW_NS), str(NOW_NS + 2_000_000)
    as_json = decode(json.dumps(request).encode(), JSON)
    assert comparable(columnar)[0]["trace_id"] == "00000000000000000000000000000001"
    assert comparable(protobuf) == [
        {**row, "link_trace_id": None, "link_span_id": None} for row in comparable(columnar)
    ]
    assert comparable(as_json) == comparable(protobuf)


def test_spans_from_the_real_exporter_encoding_keep_parents_links_and_status(
    store_layout: StoreLayout,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "cv-parser"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("choreoscope-test")
    with tracer.start_as_current_span("publish recruit.cv.parsed", kind=SpanKind.PRODUCER) as p:
        p.set_attribute("messaging.destination.name", "recruit.cv.parsed")
        p.set_attribute("choreo.workflow.id", "wf-42")
    link = Link(p.get_span_context())
    with tracer.start_as_current_span("process recruit.cv.parsed", links=[link]) as c:
        c.set_status(StatusCode.ERROR, "scorer crashed")
    spans = exporter.get_finished_spans()
    batch = decode(encode_columnar_batch(spans), COLUMNAR)
    SegmentWriter(layout=store_layout).write("spans", batch.spans)
    rows = {
        r["name"]: r
        for r in open_store(store_layout.root)
        .execute("select * from spans")
        .df()
        .to_dict("records")
    }
    producer, consumer = rows["publish recruit.cv.parsed"], rows["process recruit.cv.parsed"]
    assert producer["kind"] == "producer" and producer["workflow_id"] == "wf-42"
    assert producer["service_name"] == "cv-parser"
    assert consumer["status_code"] == "error" and consumer["status_message"] == "scorer crashed"
    assert (consumer["link_trace_id"], consumer["link_span_id"]) == (
        producer["trace_id"],
        producer["span_id"],
    )


def _settle_spans() -> Sequence[ReadableSpan]:
    """A nak that asked a 30 s redelivery delay, and an ack (which asks none)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "scorer"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("choreoscope-test")
    settle = {semconv.MESSAGING_OPERATION_TYPE: "settle"}
    nak = {**settle, semconv.CHOREO_NAK_DELAY_MS: 30_000.0}
    tracer.start_span("nak recruit.cv.parsed", kind=SpanKind.CLIENT, attributes=nak).end()
    tracer.start_span("ack recruit.cv.parsed", kind=SpanKind.CLIENT, attributes=settle).end()
    return exporter.get_finished_spans()


def _otlp_json(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP JSON encoding of ``spans``: protobuf's JSON, with hex ids."""
    request = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in request["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(request).encode()


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        (COLUMNAR, encode_columnar_batch),
        (PROTOBUF, lambda spans: encode_spans(spans).SerializeToString()),
        (JSON, _otlp_json),
    ],
    ids=["columnar", "otlp-protobuf", "otlp-json"],
)
def test_a_naks_redelivery_delay_lands_in_its_column_in_every_format(
    content_type: str, encode: object
) -> None:
    decoded = decode(encode(_settle_spans()), content_type)  # type: ignore[operator]
    delays = {row["name"]: row["nak_delay_ms"] for row in decoded.spans.to_pylist()}
    assert delays == {"nak recruit.cv.parsed": 30_000.0, "ack recruit.cv.parsed": None}
    assert decoded.reject_count == 0


def test_a_nak_delay_that_is_no_number_is_left_out_and_the_spans_kept() -> None:
    decoded = decode(columnar_batch(0, 3, now_ns=NOW_NS, nak_delay_ms=["30s", 5, None]), COLUMNAR)
    assert decoded.spans["nak_delay_ms"].to_pylist() == [None, 5.0, None]
    assert decoded.reject_count == 0


@pytest.mark.parametrize("content_type", [COLUMNAR, PROTOBUF], ids=["columnar", "otlp-protobuf"])
def test_a_span_linking_to_several_spans_is_flagged_several_links(
    store_layout: StoreLayout, content_type: str
) -> None:
    """A batch consumer's span links to each message it handled: its first link's ids
    are columns, and the flag tells readers the rest are in ``links``."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "auditor"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("choreoscope-test")
    published = []
    for _ in range(3):
        with tracer.start_as_current_span("send audit.logged", kind=SpanKind.PRODUCER) as p:
            published.append(p.get_span_context())
    with tracer.start_as_current_span(
        "process audit.logged", kind=SpanKind.CONSUMER, links=[Link(c) for c in published]
    ):
        pass
    with tracer.start_as_current_span(
        "process audit.logged once", kind=SpanKind.CONSUMER, links=[Link(published[0])]
    ):
        pass
    spans = exporter.get_finished_spans()
    data = (
        encode_columnar_batch(spans)
        if content_type == COLUMNAR
        else encode_spans(spans).SerializeToString()
    )
    SegmentWriter(layout=store_layout).write("spans", decode(data, content_type).spans)

    rows = {
        name: (flags, link_span_id)
        for name, flags, link_span_id in open_store(store_layout.root)
        .execute("SELECT name, ingest_flags, link_span_id FROM spans WHERE kind = 'consumer'")
        .fetchall()
    }
    first = f"{published[0].span_id:016x}"
    assert rows == {
        "process audit.logged": ("several_links", first),
        "process audit.logged once": (None, first),
    }


@pytest.mark.parametrize(
    ("column", "bad_value", "reason"),
    [
        ("trace_id", "abc", "trace_id is not 32 hex"),
        ("trace_id", "0" * 32, "trace_id is not 32 hex characters, or is all zeros"),
        ("trace_id", "z" * 32, "trace_id is not 32 hex"),
        ("span_id", "0" * 16, "span_id is not 16 hex characters, or is all zeros"),
        ("span_id", "1" * 20, "span_id is not 16 hex"),
        ("start_ns", 5 * 10**9, "start time is outside the years 2000-2100"),
        ("end_ns", 1_500_000_000 * 10**9, "span ends before it starts"),
        ("end_ns", 2**64 - 1, "end time is outside the years 2000-2100"),
    ],
)
def test_span_with_bad_identity_or_time_is_rejected_and_the_rest_kept(
    column: str, bad_value: object, reason: str
) -> None:
    batch = msgpack.unpackb(columnar_batch(0, 4, now_ns=NOW_NS))
    batch[column][1] = bad_value
    decoded = decode(msgpack.packb(batch), COLUMNAR)
    assert decoded.span_count == 3
    assert "0000000000000002" not in decoded.spans.column("span_id").to_pylist()
    (rejected,) = decoded.rejected.to_pylist()
    assert rejected["reason"].startswith(reason)
    assert json.loads(rejected["raw"])["span_id"] == batch["span_id"][1]


def test_otlp_json_span_in_year_3000_is_rejected() -> None:
    request = otlp_json_request(0, 3)
    span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"] = str(32_503_680_000 * 10**9)  # 3000-01-01
    span["endTimeUnixNano"] = str(32_503_680_001 * 10**9)
    decoded = decode(json.dumps(request).encode(), JSON)
    assert decoded.span_count == 2
    assert decoded.rejected.column("reason").to_pylist() == [
        "start time is outside the years 2000-2100"
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda span: span["attributes"].append({"key": "n", "value": {"intValue": "n/a"}}),
        lambda span: span.update(kind="SERVER"),  # the enum's name, not its number
        lambda span: span["attributes"].append({"value": {"stringValue": "no key"}}),
        # each of these refused the whole request, its good spans with it
        lambda span: span.update(name=42),
        lambda span: span.update(status={"code": 2, "message": ["not", "text"]}),
        lambda span: span.update(kind=2**64),
    ],
    ids=[
        "int-attribute-not-a-number",
        "kind-as-a-name",
        "attribute-without-key",
        "name-not-text",
        "status-message-not-text",
        "kind-beyond-int64",
    ],
)
def test_one_otlp_json_span_of_an_unexpected_shape_is_rejected_alone(damage) -> None:
    # DESIGN: the good spans of a partly bad payload are kept
    request = otlp_json_request(0, 500)
    bad = request["resourceSpans"][0]["scopeSpans"][0]["spans"][7]
    damage(bad)

    decoded = decode(json.dumps(request).encode(), JSON)

    assert (decoded.span_count, decoded.received_spans) == (499, 500)  # one refused
    (rejected,) = decoded.rejected.to_pylist()
    assert rejected["reason"].startswith("OTLP JSON span of an unexpected shape")
    assert json.loads(rejected["raw"])["spanId"] == bad["spanId"]


def test_otlp_json_scope_whose_name_is_not_text_refuses_its_spans_and_keeps_the_others() -> None:
    request = otlp_json_request(0, 20)
    scope_spans = request["resourceSpans"][0]["scopeSpans"]
    scope_spans.append({"scope": {"name": 7}, "spans": [scope_spans[0]["spans"].pop()]})

    decoded = decode(json.dumps(request).encode(), JSON)

    assert (decoded.span_count, decoded.received_spans) == (19, 20)
    (reason,) = decoded.rejected.column("reason").to_pylist()
    assert "scope name is int, not text" in reason


@pytest.mark.parametrize(
    ("column", "value"), [("status_code", "ERROR"), ("kind", [1]), ("subject", 42)]
)
def test_one_columnar_span_with_a_value_of_the_wrong_type_is_rejected_alone(
    column: str, value: object
) -> None:
    batch = msgpack.unpackb(columnar_batch(0, 500, now_ns=NOW_NS))
    batch[column][3] = value

    decoded = decode(msgpack.packb(batch), COLUMNAR)

    assert (decoded.span_count, decoded.received_spans) == (499, 500)
    assert batch["span_id"][3] not in decoded.spans.column("span_id").to_pylist()
    (rejected,) = decoded.rejected.to_pylist()
    assert rejected["reason"].startswith(f"span of an unexpected shape ({column} is")
    assert json.loads(rejected["raw"])["span_id"] == batch["span_id"][3]


def test_otlp_protobuf_span_with_short_ids_is_rejected_and_the_rest_kept() -> None:
    request = otlp_request(0, 3)
    request.resource_spans[0].scope_spans[0].spans[2].trace_id = b"\x01\x02"
    decoded = decode(request.SerializeToString(), PROTOBUF)
    assert decoded.span_count == 2
    assert decoded.rejected.column("reason").to_pylist()[0].startswith("trace_id")


def test_huge_attribute_value_is_truncated_flagged_and_recorded() -> None:
    batch = msgpack.unpackb(columnar_batch(0, 2, now_ns=NOW_NS))
    batch["attributes"][0] = json.dumps({"llm.prompt": "x" * 200_000, "small": "kept"})
    decoded = decode(msgpack.packb(batch), COLUMNAR)
    assert decoded.span_count == 2
    first = decoded.spans.sort_by("span_id").to_pylist()[0]
    assert first["ingest_flags"] == "attribute_truncated"
    attributes = json.loads(first["attributes"])
    assert attributes["small"] == "kept"
    assert attributes["llm.prompt"].startswith("xxx") and len(attributes["llm.prompt"]) < 10_000
    (rejected,) = decoded.rejected.to_pylist()
    assert "llm.prompt" in rejected["reason"]
    assert rejected["size"] > 200_000 and len(rejected["raw"]) == RAW_CAP_BYTES


def test_many_small_attributes_over_the_cap_are_cut_to_it_not_only_flagged() -> None:
    # 1,000 values of 60 characters: none is long, together they are 9x the cap
    batch = msgpack.unpackb(columnar_batch(0, 2, now_ns=NOW_NS))
    batch["attributes"][0] = json.dumps({f"tool.arg.{i}": "v" * 60 for i in range(1_000)})
    decoded = decode(msgpack.packb(batch), COLUMNAR)
    first = decoded.spans.sort_by("span_id").to_pylist()[0]
    assert first["ingest_flags"] == "attribute_truncated"
    assert len(first["attributes"]) <= MAX_ATTRIBUTE_CHARS
    attributes = json.loads(first["attributes"])
    assert attributes["choreo.attributes.dropped"] + len(attributes) - 1 == 1_000
    (rejected,) = decoded.rejected.to_pylist()
    assert "dropped whole: tool.arg." in rejected["reason"]


def test_attributes_over_the_cap_nested_too_deeply_to_read_are_cut_and_the_batch_kept() -> None:
    # json.loads raised RecursionError there: the whole batch was refused, its good spans too
    batch = msgpack.unpackb(columnar_batch(0, 10, now_ns=NOW_NS))
    batch["attributes"][3] = '{"k": ' + "[" * 50_000 + "]" * 50_000 + "}"
    decoded = decode(msgpack.packb(batch), COLUMNAR)
    assert decoded.span_count == 10 and decoded.unreadable == 0
    (span,) = [s for s in decoded.spans.to_pylist() if s["span_id"] == batch["span_id"][3]]
    assert span["ingest_flags"] == "attribute_truncated"
    assert len(json.loads(span["attributes"])["choreo.attributes.unparsed"]) == MAX_ATTRIBUTE_CHARS


def test_non_utf8_text_is_repaired_flagged_and_recorded_in_every_format() -> None:
    protobuf = otlp_request(0, 3)
    protobuf.resource_spans[0].scope_spans[0].spans[1].name = "MARKER"
    damaged = protobuf.SerializeToString().replace(b"MARKER", b"MA\xffKER")
    as_json = json.dumps(otlp_json_request(0, 3)).encode().replace(b"msg-1", b"msg-\xfe")
    columnar = columnar_batch(0, 3, now_ns=NOW_NS).replace(b"msg-1", b"msg\xc3\x28")
    for data, content_type in ((damaged, PROTOBUF), (as_json, JSON), (columnar, COLUMNAR)):
        decoded = decode(data, content_type)
        assert decoded.span_count == 3, content_type
        flags = decoded.spans.sort_by("span_id").column("ingest_flags").to_pylist()
        assert flags == [None, "invalid_utf8", None], content_type
        assert "\ufffd" in str(decoded.spans.sort_by("span_id").to_pylist()[1]), content_type
        (rejected,) = decoded.rejected.to_pylist()
        assert "non-UTF-8" in rejected["reason"], content_type
        assert rejected["raw"] == data[:RAW_CAP_BYTES]


def _deeply_nested_attribute(depth: int) -> bytes:
    value = '{"arrayValue":{"values":[' * depth + "{}" + "]}}" * depth
    span = '{"attributes":[{"key":"k","value":' + value + "}]}"
    return ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}").encode()


def _columnar_with(**overrides: object) -> bytes:
    return msgpack.packb({**msgpack.unpackb(columnar_batch(0, 0, now_ns=NOW_NS)), **overrides})


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (b"\x0a\xff\xff\xff", PROTOBUF, "malformed application/x-protobuf payload"),
        (b'{"resourceSpans": [', JSON, "malformed application/json payload: not JSON"),
        (b"\x93\x01\x02", COLUMNAR, "malformed application/vnd.choreoscope.spans+msgpack"),
        (gzip.compress(b"spans"), "text/plain", "unsupported Content-Type"),
        # what a decoder raised on, not only what it found malformed
        (b"[" * 100_000, JSON, "malformed application/json payload: JSON nested too deeply"),
        (_deeply_nested_attribute(3000), JSON, "nested too deeply"),
        (_columnar_with(trace_id=None), COLUMNAR, "column 'trace_id' is missing"),
        (
            _columnar_with(n=2**62),
            COLUMNAR,
            "column 'trace_id' is not a list of n=4611686018427387904 values",
        ),
    ],
)
def test_malformed_payload_is_rejected_with_reason_and_raw_bytes(
    data: bytes, content_type: str, reason: str
) -> None:
    good = columnar_batch(0, 2, now_ns=NOW_NS)
    decoded = decode_payloads(
        [
            Payload(data=data, content_type=content_type, source="nats:choreo.spans.x"),
            Payload(data=good, content_type=COLUMNAR, source="nats:choreo.spans.y"),
        ]
    )
    assert decoded.span_count == 2
    (rejected,) = decoded.rejected.to_pylist()
    assert reason in rejected["reason"]
    assert rejected["raw"] == data[:RAW_CAP_BYTES] and rejected["source"] == "nats:choreo.spans.x"


def test_columnar_batch_with_a_short_column_is_rejected_whole() -> None:
    batch = msgpack.unpackb(columnar_batch(0, 3, now_ns=NOW_NS))
    batch["name"] = batch["name"][:2]
    decoded = decode(msgpack.packb(batch), COLUMNAR)
    assert decoded.span_count == 0
    assert "column 'name' is not a list of n=3 values" in decoded.rejected["reason"][0].as_py()


def test_columnar_resource_with_a_binary_key_keeps_its_spans() -> None:
    batch = msgpack.unpackb(columnar_batch(0, 2, now_ns=NOW_NS))
    batch["resource"] = {**batch["resource"], b"build": "42"}
    decoded = decode(msgpack.packb(batch, use_bin_type=True), COLUMNAR)
    assert decoded.span_count == 2 and decoded.reject_count == 0
    assert json.loads(decoded.spans["resource"][0].as_py())["build"] == "42"


def test_columnar_resource_with_a_number_key_keeps_its_spans() -> None:
    batch = msgpack.unpackb(columnar_batch(0, 2, now_ns=NOW_NS))
    batch["resource"] = {**batch["resource"], 7: "seven"}
    decoded = decode(msgpack.packb(batch), COLUMNAR)
    assert decoded.span_count == 2 and decoded.reject_count == 0
    assert json.loads(decoded.spans["resource"][0].as_py())["7"] == "seven"


def test_exporter_numbers_beyond_int64_are_left_out_and_the_spans_kept() -> None:
    payload = Payload(
        data=columnar_batch(0, 2, now_ns=NOW_NS), content_type=COLUMNAR, source="test",
        batch_seq=2**70, spans_dropped=-(2**64),
    )  # fmt: skip
    decoded = decode_payloads([payload])
    assert decoded.span_count == 2
    assert decoded.spans["exporter_batch_seq"].to_pylist() == [None, None]
    assert decoded.spans["exporter_spans_dropped"].to_pylist() == [None, None]


@pytest.mark.parametrize(
    ("column", "value"), [("start_ns", "soon"), ("start_ns", True), ("end_ns", [1])]
)
def test_columnar_span_whose_time_is_no_number_is_rejected_as_such(
    column: str, value: object
) -> None:
    # was: "start time is outside the years 2000-2100", the raw span showing -1
    batch = msgpack.unpackb(columnar_batch(0, 3, now_ns=NOW_NS))
    batch[column][1] = value
    decoded = decode(msgpack.packb(batch), COLUMNAR)
    assert decoded.span_count == 2
    assert batch["span_id"][1] not in decoded.spans.column("span_id").to_pylist()
    (rejected,) = decoded.rejected.to_pylist()
    assert rejected["reason"].startswith(
        f"{column} {value!r} is not a number: send nanoseconds since 1970, as an integer"
    )
    assert "outside the years" not in rejected["reason"]
    assert json.loads(rejected["raw"])[column] == value  # as sent


def test_columnar_times_beside_one_that_is_no_number_are_read_as_numbers() -> None:
    # a time sent as a float, or beyond int64, beside a bad one: read as the batch
    # without the bad one reads them (the float cut to nanoseconds, the huge one
    # refused as out of range)
    batch = msgpack.unpackb(columnar_batch(0, 4, now_ns=NOW_NS))
    sent = batch["start_ns"][0]
    batch["start_ns"][0] = float(sent)
    batch["start_ns"][1] = "soon"
    batch["start_ns"][2] = 2**64 - 1  # msgpack uint64
    decoded = decode(msgpack.packb(batch), COLUMNAR)
    reasons = sorted(decoded.rejected.column("reason").to_pylist())
    assert decoded.span_count == 2
    assert [r.split(":")[0] for r in reasons] == [
        "start time is outside the years 2000-2100",
        "start_ns 'soon' is not a number",
    ]
    stored = {row["span_id"]: row for row in decoded.spans.to_pylist()}
    assert stored[batch["span_id"][0]]["start_time"].timestamp() == pytest.approx(sent / 1e9)


@pytest.mark.parametrize("field", ["startTimeUnixNano", "endTimeUnixNano"])
def test_otlp_json_span_whose_time_is_no_number_is_rejected_as_such(field: str) -> None:
    # was: "start time is outside the years 2000-2100", which sent the user to clocks
    request = otlp_json_request(0, 3)
    span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    span[field] = "soon"
    decoded = decode(json.dumps(request).encode(), JSON)
    assert decoded.span_count == 2
    (reason,) = decoded.rejected.column("reason").to_pylist()
    assert f"{field} 'soon' is not a number: send nanoseconds since 1970" in reason
    assert "outside the years" not in reason
