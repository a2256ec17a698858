"""The OTLP/HTTP trace receiver: ``POST /v1/traces``, so any OpenTelemetry SDK can
send spans with its stock exporter.

Per the OTLP specification (protocol/otlp.md, OTLP/HTTP):
- ``application/x-protobuf`` or ``application/json`` bodies, gzip or not;
- 200 with an ``ExportTraceServiceResponse`` in the request's encoding, carrying
  ``partial_success`` (rejected span count and why) when some spans were refused;
- 400 with a ``google.rpc.Status`` when the body cannot be read at all;
- 413 for a body, or a decompressed body, over the limits (a gzip bomb);
  a request over the NATS ``max_payload`` (1 MiB by default, under those limits) is
  split into several messages (``otlp_split``) rather than refused: a stock SDK's
  batch of spans with large attributes is often that large;
- 415 for another Content-Type; 503 with ``Retry-After`` when JetStream cannot
  take the spans, which the SDK retries;
- 500 with the error's text if handling fails unexpectedly (``HttpServer``).

The body is published to ``CHOREO_SPANS`` (the collector stores it, rejects
included) and the answer comes only after JetStream acked it. ``Nats-Msg-Id`` is
the body's hash (``<hash>-<part>`` for a split one), so an SDK's retry of a request
that did land is deduplicated.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import zlib
from typing import Final

import nats.errors
from nats.aio.client import Client
from nats.js.errors import Error as JetStreamError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.decoding import Payload, decode_payloads, media_type
from collector.http_server import HttpServer, Request, Response
from collector.otlp_split import UnsplittableExport, split_export
from instrumentation import wire
from instrumentation.throttled_log import ThrottledWarning

log = logging.getLogger(__name__)

PATH: Final = "/v1/traces"
PUBLISH_SUBJECT: Final = f"{wire.SPANS_SUBJECT_PREFIX}otlp-http"
_PROTOBUF = wire.CONTENT_TYPE_OTLP_PROTOBUF
_JSON = wire.CONTENT_TYPE_OTLP_JSON
_ACCEPTED = {_PROTOBUF: _PROTOBUF, "application/protobuf": _PROTOBUF, _JSON: _JSON}
_INVALID_ARGUMENT = 3
_UNAVAILABLE = 14
_RESOURCE_EXHAUSTED = 8
_HEADER_ROOM = 512
"""Bytes of a NATS message left for its headers (``max_payload`` counts them)."""


class OtlpHttpReceiver:
    """Receives OTLP/HTTP trace exports and publishes them into ``CHOREO_SPANS``."""

    def __init__(
        self,
        *,
        nc: Client,
        host: str = "127.0.0.1",
        port: int = 4318,
        max_body_bytes: int = 8 * 2**20,
        max_decompressed_bytes: int = 16 * 2**20,
        publish_timeout: float = 3.0,
        retry_after_s: int = 5,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=publish_timeout)
        self.max_decompressed_bytes = max_decompressed_bytes
        self.publish_timeout = publish_timeout
        self.retry_after_s = retry_after_s
        self._warn_refused = ThrottledWarning(10.0, logger=log)
        self._warn_unread = {status: ThrottledWarning(10.0, logger=log) for status in (400, 415)}
        self._warn_unavailable = ThrottledWarning(10.0, logger=log)
        self._server = HttpServer(
            handler=self.handle, host=host, port=port, max_body_bytes=max_body_bytes
        )

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> None:
        await self._server.start()
        log.info("OTLP/HTTP receiver on http://%s:%d%s", self.host, self.port, PATH)

    async def stop(self) -> None:
        await self._server.stop()

    async def handle(self, request: Request) -> Response:
        if request.path != PATH:
            return _text(404, f"no such endpoint; send traces to POST {PATH}")
        if request.method != "POST":
            return Response(405, b"use POST\n", {"Allow": "POST"})
        encoding = _ACCEPTED.get(media_type(request.headers.get("content-type")))
        if encoding is None:
            self._unread(415, f"Content-Type {request.headers.get('content-type')!r}")
            return _text(415, "send application/x-protobuf or application/json")
        body = request.body
        content_encoding = request.headers.get("content-encoding", "identity").lower()
        if content_encoding == "gzip":
            try:
                body = _gunzip(body, limit=self.max_decompressed_bytes)
            except _TooLarge:
                self._refused(f"decompressed body over {self.max_decompressed_bytes} bytes")
                return _status(
                    413, encoding, _RESOURCE_EXHAUSTED,
                    f"decompressed body over {self.max_decompressed_bytes} bytes",
                )  # fmt: skip
            except (zlib.error, EOFError) as e:
                self._unread(400, f"Content-Encoding gzip, but the body is not gzip: {e}")
                return _status(400, encoding, _INVALID_ARGUMENT, f"bad gzip body: {e}")
        elif content_encoding != "identity":
            self._unread(415, f"Content-Encoding {content_encoding!r}")
            return _text(415, f"Content-Encoding {content_encoding!r} is not supported; use gzip")
        decoded = await asyncio.to_thread(
            decode_payloads, [Payload(data=body, content_type=encoding, source="otlp-http")]
        )
        max_payload = self.nc.max_payload
        parts, too_large = [body], 0
        if len(body) > max_payload - _HEADER_ROOM:
            try:
                split = await asyncio.to_thread(
                    split_export, body, encoding=encoding, limit=max_payload - _HEADER_ROOM
                )
            except UnsplittableExport:
                split = None
            if split is None or decoded.unreadable:
                # nothing of it can reach the store (nor its rejected view): the log says it
                why = decoded.rejected.column("reason")[0].as_py() if decoded.unreadable else ""
                self._refused(f"{len(body)} bytes, over the NATS max_payload ({max_payload})")
                return _status(
                    413, encoding, _RESOURCE_EXHAUSTED,
                    f"{len(body)} bytes is over the NATS max_payload ({max_payload}), and "
                    f"not an OTLP request that can be split ({why or 'unreadable'}): "
                    "export smaller batches",
                )  # fmt: skip
            parts, too_large = split.parts, split.too_large
            if too_large:
                # the answer tells what becomes of the spans sent, those of the parts:
                # the whole body's decoding also judged the spans left out, and the
                # answer said one was "stored" with its attributes truncated, or
                # counted one refused for its id too twice
                decoded = await asyncio.to_thread(
                    decode_payloads,
                    [
                        Payload(data=part, content_type=encoding, source="otlp-http")
                        for part in parts
                    ],
                )
                self._refused(
                    f"{too_large} span(s) each over the NATS max_payload ({max_payload}) "
                    "alone; the other spans of the export are stored",
                    answer="in a 200's partial success",
                    advice="its service must keep less on a span (attributes, events)",
                )
        try:
            digest = hashlib.sha256(body).hexdigest()
            for k, part in enumerate(parts):
                # a retried export splits the same way: JetStream drops the parts it has
                await self._publish(part, encoding, digest if len(parts) == 1 else f"{digest}-{k}")
        except _Unavailable as e:
            # throttled: while NATS is away every export of every SDK fails, a few a second
            self._warn_unavailable(
                "OTLP/HTTP: JetStream did not take the spans; answering 503, which the SDK retries",
                str(e),
            )
            return _status(
                503, encoding, _UNAVAILABLE, f"the span stream is unavailable: {e}",
                {"Retry-After": str(self.retry_after_s)},
            )  # fmt: skip
        if decoded.unreadable:
            reason = decoded.rejected.column("reason")[0].as_py()
            return _status(400, encoding, _INVALID_ARGUMENT, reason)
        refused = decoded.received_spans - decoded.span_count + too_large
        reasons = set(decoded.rejected.column("reason").to_pylist()) if refused else set()
        if too_large:
            reasons.add(
                f"{too_large} span(s) over the NATS max_payload ({max_payload} bytes) on "
                "their own are not stored: cut their attributes or events"
            )
        return _export_response(encoding, refused, "; ".join(sorted(reasons)))

    def _refused(
        self,
        why: str,
        *,
        answer: str = "with 413",
        advice: str = "its exporter must send smaller batches",
    ) -> None:
        """Spans the client is told are refused (a 413, or a 200's partial success)
        never reach the store, so the collector's log is where an operator learns of it."""
        self._warn_refused(
            f"OTLP/HTTP: refused spans {answer} ({why}); the client drops them", advice
        )

    def _unread(self, status: int, why: str) -> None:
        """A request refused before its body could be read as OTLP: it reaches neither
        the store nor ``rejected``, so the log says it, and what the exporter must send."""
        self._warn_unread[status](
            f"OTLP/HTTP: refused an export with {status} ({why}); nothing of it is stored",
            "its exporter must send OTLP protobuf or JSON (application/x-protobuf or "
            "application/json), gzipped or not",
        )

    async def _publish(self, body: bytes, encoding: str, msg_id: str) -> None:
        if not self.nc.is_connected:
            raise _Unavailable("not connected to NATS")
        headers = {wire.CONTENT_TYPE: encoding, wire.MSG_ID: msg_id}
        try:
            await self.js.publish(
                PUBLISH_SUBJECT, body, headers=headers, timeout=self.publish_timeout
            )
        except (nats.errors.Error, JetStreamError, TimeoutError) as e:
            raise _Unavailable(str(e) or type(e).__name__) from e


class _Unavailable(Exception):
    pass


class _TooLarge(Exception):
    pass


def _gunzip(data: bytes, *, limit: int) -> bytes:
    """The body, of every gzip member (RFC 1952 allows several, one after another;
    reading only the first dropped the spans of the others), at most ``limit`` bytes."""
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += inflater.decompress(data, limit + 1 - len(out))  # never 0: unlimited
        if len(out) > limit:
            raise _TooLarge
        if not inflater.eof:
            raise EOFError("the gzip stream is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)


def _text(status: int, message: str) -> Response:
    return Response(status, (message + "\n").encode(), {"Content-Type": "text/plain"})


def _export_response(encoding: str, rejected_spans: int, message: str) -> Response:
    if encoding == _JSON:
        body: dict[str, object] = {}
        if rejected_spans or message:
            body["partialSuccess"] = {"rejectedSpans": rejected_spans, "errorMessage": message}
        return Response(200, json.dumps(body).encode(), {"Content-Type": _JSON})
    response = ExportTraceServiceResponse()
    if rejected_spans or message:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = message
    return Response(200, response.SerializeToString(), {"Content-Type": _PROTOBUF})


def _status(
    http_status: int,
    encoding: str,
    code: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A ``google.rpc.Status`` body (code = 1, message = 2), in the request's encoding."""
    if encoding == _JSON:
        body = json.dumps({"code": code, "message": message}).encode()
    else:
        text = message.encode()
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return Response(http_status, body, {"Content-Type": encoding, **(headers or {})})


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
