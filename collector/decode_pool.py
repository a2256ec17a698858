"""Turning fetched payloads into durable segments on every core.

Python decodes OTLP protobuf at ~70k spans/s per core and the columnar format at
~200k, so decoding is the bottleneck, not NATS. Each task here decodes a group of
payloads *and* writes their segment (spans, plus rejected rows) in the same
worker process, so decoded rows never travel back between processes (pickling
them cost as much as writing them). The main process only fetches, hands out
raw payloads, and acks once a task reports its segment durable.

With ``workers=0`` the same task runs in a thread of the main process: less
memory, one core; the tests use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import duckdb

from collector.decoding import Payload, decode_payloads
from collector.full_disk import full_disk_path
from collector.segment_writer import SegmentWriter
from collector.span_batch import MAX_ATTRIBUTE_CHARS
from instrumentation.errors import ChoreoscopeError
from store.layout import StoreLayout


class StoreWriteError(ChoreoscopeError):
    """A segment could not be written (disk full, unwritable store); retry later.
    ``full_disk``: the path a full disk refused (``"."`` when the error names none),
    else None. Its arguments are positional: it crosses the process boundary by
    pickle, which builds it again from them."""

    transient = True

    def __init__(self, message: str, full_disk: str | None = None) -> None:
        super().__init__(message, full_disk)
        self.message = message
        self.full_disk = full_disk

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class WrittenBatch:
    """What one task stored: counts only, the rows are on disk."""

    spans: int
    rejected: int
    received_spans: int
    unreadable: int
    reasons: tuple[str, ...] = ()
    summarized: tuple[str, ...] = ()
    """Per message whose span rejects were too many to list: ``DecodedBatch.summarized``."""


_writers: dict[tuple[str, str], SegmentWriter] = {}


def decode_and_write(
    payloads: Sequence[Payload],
    *,
    data_dir: str,
    writer_id: str,
    received_at: dt.datetime,
    max_attribute_chars: int = MAX_ATTRIBUTE_CHARS,
) -> WrittenBatch:
    """Decode ``payloads`` and write their spans and rejects as durable segments."""
    decoded = decode_payloads(
        payloads, received_at=received_at, max_attribute_chars=max_attribute_chars
    )
    key = (data_dir, writer_id)
    writer = _writers.get(key)
    if writer is None:
        # one DuckDB thread per worker: the workers already use every core
        writer = _writers[key] = SegmentWriter(
            layout=StoreLayout.at(data_dir),
            writer_id=f"{writer_id}-{os.getpid()}",
            threads=1,
            memory_limit="256MB",
        )
    try:
        if decoded.spans.num_rows:
            writer.write("spans", decoded.spans)
        if decoded.rejected.num_rows:
            writer.write("rejected", decoded.rejected)
    except (OSError, duckdb.Error) as e:
        # re-raised as a plain exception: it crosses the process boundary by pickle
        full = full_disk_path(e)
        raise StoreWriteError(
            f"{type(e).__name__}: {e}", None if full is None else str(full)
        ) from None
    return WrittenBatch(
        spans=decoded.span_count,
        rejected=decoded.reject_count,
        received_spans=decoded.received_spans,
        unreadable=decoded.unreadable,
        reasons=tuple(decoded.rejected.column("reason").to_pylist()),
        summarized=decoded.summarized,
    )


def _warm_up() -> int:
    return os.getpid()


@contextlib.contextmanager
def _workers_deaf_to_ctrl_c() -> Iterator[None]:
    """Around a submit, which may start a worker: SIGINT is blocked in this thread, so a
    worker starts with it blocked (the mask survives exec) and never dies of Ctrl-C,
    not even while still importing. A Ctrl-C meanwhile waits, it is not lost.

    Ctrl-C reaches the whole process group; the parent handles it (it finishes the
    tasks in flight, then shuts the pool down). A worker killed by it printed a
    KeyboardInterrupt traceback each."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _init_worker(parent_pid: int) -> None:
    """Worker initializer: SIGINT is the parent's to handle (see above), and a worker
    would outlive a SIGKILLed collector, so it exits when its parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class DecodePool:
    """Runs ``decode_and_write`` tasks in ``workers`` processes (or one thread)."""

    def __init__(
        self,
        *,
        layout: StoreLayout,
        writer_id: str,
        workers: int,
        max_attribute_chars: int = MAX_ATTRIBUTE_CHARS,
    ) -> None:
        self.layout = layout
        self.writer_id = writer_id
        self.workers = workers
        self.max_attribute_chars = max_attribute_chars
        self.generation = 0
        """Counts replacements of broken workers; ``replace_broken`` takes the one it saw."""
        self._executor = self._new_executor()

    def _new_executor(self) -> Executor:
        workers = self.workers
        return (
            ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
            if workers > 0
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        )

    def replace_broken(self, generation: int) -> None:
        """A worker of ``generation`` died (killed, out of memory): start fresh workers,
        once, however many tasks saw it die."""
        if generation != self.generation:
            return
        self.generation += 1
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()

    @property
    def parallelism(self) -> int:
        return max(1, self.workers)

    async def warm_up(self) -> None:
        """Start the worker processes now, not on the first batch."""
        loop = asyncio.get_running_loop()
        with _workers_deaf_to_ctrl_c():
            started = [
                loop.run_in_executor(self._executor, _warm_up) for _ in range(self.parallelism)
            ]
        await asyncio.gather(*started)

    def submit(self, payloads: Sequence[Payload]) -> asyncio.Future[WrittenBatch]:
        loop = asyncio.get_running_loop()
        with _workers_deaf_to_ctrl_c():
            return loop.run_in_executor(  # type: ignore[return-value]
                self._executor, _task, list(payloads), str(self.layout.root), self.writer_id,
                dt.datetime.now(dt.UTC), self.max_attribute_chars,
            )  # fmt: skip

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _task(
    payloads: list[Payload],
    data_dir: str,
    writer_id: str,
    received_at: dt.datetime,
    max_attribute_chars: int,
) -> WrittenBatch:
    return decode_and_write(
        payloads, data_dir=data_dir, writer_id=writer_id, received_at=received_at,
        max_attribute_chars=max_attribute_chars,
    )  # fmt: skip
