"""Re-reading an OTLP protobuf request that has non-UTF-8 text in string fields.

upb refuses a whole request for one bad string. These are copies of the OTLP
trace message types in a private descriptor pool in which every ``string`` field
is ``bytes`` (the same wire format), so such a request still parses. Each string
is then decoded with U+FFFD replacements, the request re-encoded, and parsed
with the real types; the positions of the damaged spans are returned for flagging.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

_PREFIX = "choreoscope_lenient"
_STRING = FieldDescriptor.TYPE_STRING
_BYTES = FieldDescriptor.TYPE_BYTES


@functools.cache
def lenient_request_class() -> tuple[type, frozenset[tuple[str, str]]]:
    pool = descriptor_pool.DescriptorPool()
    was_string: set[tuple[str, str]] = set()
    for module in (common_pb2, resource_pb2, trace_pb2, trace_service_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        proto.name = f"{_PREFIX}/{proto.name}"
        proto.package = f"{_PREFIX}.{proto.package}"
        proto.dependency[:] = [f"{_PREFIX}/{d}" for d in proto.dependency]
        del proto.service[:]
        proto.options.Clear()
        for message in proto.message_type:
            _make_strings_bytes(message, f"{proto.package}.{message.name}", was_string)
        pool.Add(proto)
    descriptor = pool.FindMessageTypeByName(
        f"{_PREFIX}.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"
    )
    return message_factory.GetMessageClass(descriptor), frozenset(was_string)


def _make_strings_bytes(message: Any, full_name: str, was_string: set[tuple[str, str]]) -> None:
    for field in message.field:
        if field.type == _STRING:
            field.type = _BYTES
            was_string.add((full_name, field.name))
        if field.type_name.startswith(".opentelemetry."):
            field.type_name = f".{_PREFIX}{field.type_name}"
    for nested in message.nested_type:
        _make_strings_bytes(nested, f"{full_name}.{nested.name}", was_string)


def repaired_request(payload: bytes) -> tuple[Any, set[int]]:
    """The request with bad text replaced, and the wire-order positions of damaged spans.

    Raises ``DecodeError`` if the payload is not protobuf of this shape at all.
    """
    lenient_class, was_string = lenient_request_class()
    lenient = lenient_class.FromString(payload)
    damaged: set[int] = set()
    position = 0
    for resource_spans in lenient.resource_spans:
        resource_bad = _repair(resource_spans.resource, was_string)
        for scope_spans in resource_spans.scope_spans:
            scope_bad = _repair(scope_spans.scope, was_string) or resource_bad
            for span in scope_spans.spans:
                if _repair(span, was_string) or scope_bad:
                    damaged.add(position)
                position += 1
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(lenient.SerializeToString())
    return request, damaged


def _repair(message: Any, was_string: frozenset[tuple[str, str]]) -> bool:
    """Replace invalid UTF-8 in every former string field of ``message``, recursively."""
    damaged = False
    full_name = message.DESCRIPTOR.full_name
    for field, value in message.ListFields():
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                continue
            items = value if field.is_repeated else [value]
            for item in items:
                damaged = _repair(item, was_string) or damaged
        elif (full_name, field.name) in was_string:
            if field.is_repeated:
                fixed = [_fixed(v) for v in value]
                if fixed != list(value):
                    value[:] = fixed
                    damaged = True
            else:
                fixed_value = _fixed(value)
                if fixed_value != value:
                    setattr(message, field.name, fixed_value)
                    damaged = True
    return damaged


def _fixed(data: bytes) -> bytes:
    return data.decode("utf-8", "replace").encode("utf-8")
