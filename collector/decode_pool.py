"""Decoding OTLP on every core: a process pool beside the fetching process.

Python decodes OTLP protobuf at ~70k spans/s per core, so the main process
fetches, writes and acks while worker processes decode. The columnar format
decodes ten times faster and is not worth the trip between processes: it is
decoded in a thread of the main process (Arrow releases the GIL).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from collector.decoding import DecodedBatch, Payload, decode_payloads, media_type
from collector.span_batch import MAX_ATTRIBUTE_CHARS
from instrumentation import wire

PAYLOADS_PER_TASK = 24


class DecodePool:
    """Decodes payloads off the event loop: OTLP in ``workers`` processes, the rest in a thread."""

    def __init__(self, *, workers: int, max_attribute_chars: int = MAX_ATTRIBUTE_CHARS) -> None:
        self.workers = workers
        self.max_attribute_chars = max_attribute_chars
        self._executor = (
            ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn")
            )
            if workers > 0
            else None
        )

    def decode(self, payloads: Sequence[Payload]) -> list[asyncio.Future[DecodedBatch]]:
        """Start decoding; the futures resolve in the order of ``payloads``' chunks."""
        loop = asyncio.get_running_loop()
        received_at = dt.datetime.now(dt.UTC)
        columnar = [p for p in payloads if media_type(p.content_type) == wire.CONTENT_TYPE_COLUMNAR]
        other = [p for p in payloads if media_type(p.content_type) != wire.CONTENT_TYPE_COLUMNAR]
        futures: list[asyncio.Future[DecodedBatch]] = []
        if columnar:
            futures.append(
                loop.run_in_executor(None, self._decode_here, columnar, received_at)  # type: ignore[arg-type]
            )
        if other and self._executor is None:
            futures.append(loop.run_in_executor(None, self._decode_here, other, received_at))  # type: ignore[arg-type]
        elif other:
            for i in range(0, len(other), PAYLOADS_PER_TASK):
                chunk = other[i : i + PAYLOADS_PER_TASK]
                futures.append(
                    loop.run_in_executor(
                        self._executor,
                        _decode_in_worker,
                        chunk,
                        received_at,
                        self.max_attribute_chars,
                    )
                )
        return futures

    def _decode_here(self, payloads: Sequence[Payload], received_at: dt.datetime) -> DecodedBatch:
        return decode_payloads(
            payloads, received_at=received_at, max_attribute_chars=self.max_attribute_chars
        )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _decode_in_worker(
    payloads: Sequence[Payload], received_at: dt.datetime, max_attribute_chars: int
) -> DecodedBatch:
    return decode_payloads(
        payloads, received_at=received_at, max_attribute_chars=max_attribute_chars
    )
