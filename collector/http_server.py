"""A small HTTP/1.1 server on asyncio streams, enough for an OTLP/HTTP receiver.

Keep-alive, ``Content-Length`` and chunked bodies, ``Expect: 100-continue``, and
a body size limit enforced before the body is kept (413). The application is
one coroutine: ``(Request) -> Response``; if it raises, the answer is a 500 saying so.

A client that sends its body without waiting for ``100 Continue`` (urllib, the
OpenTelemetry SDK's ``requests`` session) reads the answer only once it has sent the
whole body: so the rest of a body over the limit is read and thrown away, up to
``discard_limit_bytes``, before the 413. Answered and closed unread, the client got
a connection reset instead, and its exporter logged that rather than the 413.

A client holds nothing for ever: a connection idle between requests for
``idle_timeout_s`` is closed (a client that vanished without closing it left it
open, and a long-running receiver ran out of file descriptors), a request whose
head and body take longer than ``request_timeout_s`` to arrive gets a 408, and
beyond ``max_connections`` open at once a new one gets a 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from instrumentation.throttled_log import ThrottledWarning

log = logging.getLogger(__name__)

MAX_HEADER_LINES = 100
IDLE_TIMEOUT_S = 75.0  # as nginx's keep-alive: an SDK sends more often than that
REQUEST_TIMEOUT_S = 60.0  # a request's head and body; a 16 MiB body at ~300 KiB/s
MAX_CONNECTIONS = 512
RETRY_AFTER_S = 1
# the most of a refused body read (and thrown away) so that its client reads the 413;
# past it the connection is closed unread, as it was
DISCARD_LIMIT_BYTES = 64 * 2**20
_DISCARD_READ_BYTES = 2**16


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lowercase names
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class BodyTooLarge(Exception):
    """A body over the limit; what of it the client is still sending, unread: the
    bytes of a ``Content-Length`` body, or those of the chunk at hand and every chunk
    after it (``chunked``)."""

    def __init__(self, *, unread: int, chunked: bool) -> None:
        super().__init__(unread)
        self.unread = unread
        self.chunked = chunked


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves ``handler`` on ``host:port`` (port 0 picks a free one) until ``stop()``."""

    def __init__(
        self,
        *,
        handler: Handler,
        host: str,
        port: int,
        max_body_bytes: int,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        discard_limit_bytes: int = DISCARD_LIMIT_BYTES,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.idle_timeout_s = idle_timeout_s
        self.request_timeout_s = request_timeout_s
        self.max_connections = max_connections
        self.discard_limit_bytes = discard_limit_bytes
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._warn_refused = ThrottledWarning(10.0, logger=log)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if len(self._connections) > self.max_connections:
                self._warn_refused(
                    f"refused a connection with 503: {self.max_connections} are open",
                    "its client retries; raise max_connections if many clients export here",
                )
                busy = Response(
                    503,
                    f"over {self.max_connections} connections open: retry shortly\n".encode(),
                    {"Retry-After": str(RETRY_AFTER_S)},
                )
                await _send(writer, busy, False)
                return
            while await self._one_exchange(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except _RequestTimeout:
            late = Response(
                408, f"request not received within {self.request_timeout_s:g} s\n".encode()
            )
            with contextlib.suppress(ConnectionError):
                await _send(writer, late, False)
        except ValueError as e:
            log.debug("bad HTTP request: %s", e)
            with contextlib.suppress(ConnectionError):
                await _send(writer, Response(400, f"bad HTTP request: {e}\n".encode()), False)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            line = await asyncio.wait_for(reader.readline(), self.idle_timeout_s)
        except TimeoutError:  # idle: the client may be gone without a word
            return False
        if not line:
            return False
        try:
            async with asyncio.timeout(self.request_timeout_s):
                method, target, version = line.decode("latin-1").split()
                headers = await _read_headers(reader)
                keep_alive = (
                    version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                )
                expects_continue = headers.get("expect", "").lower() == "100-continue"
                body = await self._read_body(reader, writer, headers)
        except TimeoutError:
            raise _RequestTimeout from None
        except BodyTooLarge as refused:
            if not expects_continue:  # it is sending the body, and reads no answer before
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.request_timeout_s):
                        await self._discard_rest(reader, refused)
            peer = writer.get_extra_info("peername")
            self._warn_refused(
                f"refused a request body over {self.max_body_bytes} bytes from "
                f"{peer[0] if peer else '?'} with 413; the client drops it",
                "its exporter must send smaller batches",
            )
            too_large = Response(
                413,
                f"request body over {self.max_body_bytes} bytes: send smaller batches\n".encode(),
            )
            await _send(writer, too_large, False)
            return False
        try:
            response = await self.handler(Request(method, target.split("?", 1)[0], headers, body))
        except Exception as e:  # the client gets an answer, not a dropped connection
            log.exception("HTTP handler failed on %s %s", method, target)
            response = Response(
                500,
                f"internal error handling the request: {type(e).__name__}: {e}\n".encode(),
                {"Content-Type": "text/plain"},
            )
        await _send(writer, response, keep_alive)
        return keep_alive

    async def _read_body(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]
    ) -> bytes:
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = int(headers.get("content-length", "0") or 0)
        if not chunked and length > self.max_body_bytes:
            raise BodyTooLarge(unread=length, chunked=False)
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if not chunked:
            return await reader.readexactly(length)
        parts: list[bytes] = []
        total = 0
        while True:
            size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > self.max_body_bytes:
                raise BodyTooLarge(unread=size + 2, chunked=True)  # the chunk and its CRLF
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def _discard_rest(self, reader: asyncio.StreamReader, refused: BodyTooLarge) -> None:
        """Read what the client still sends of a refused body, keeping none of it, up
        to ``discard_limit_bytes``; beyond, the client gets the 413 only if it reads
        before it has sent everything."""
        budget = self.discard_limit_bytes
        unread = refused.unread
        while True:
            if unread > budget:
                return
            budget -= unread
            while unread > 0:
                read = len(await reader.read(min(unread, _DISCARD_READ_BYTES)))
                if read == 0:
                    return  # the client stopped sending
                unread -= read
            if not refused.chunked:
                return
            size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            unread = size + 2


class _RequestTimeout(Exception):
    pass


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise ValueError("too many header lines")


async def _send(writer: asyncio.StreamWriter, response: Response, keep_alive: bool) -> None:
    reason = HTTPStatus(response.status).phrase
    head = [f"HTTP/1.1 {response.status} {reason}", f"Content-Length: {len(response.body)}"]
    head += [f"{k}: {v}" for k, v in response.headers.items()]
    head.append("Connection: keep-alive" if keep_alive else "Connection: close")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
    await writer.drain()
