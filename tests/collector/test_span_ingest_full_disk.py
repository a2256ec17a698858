"""Span ingest on a full disk says once, plainly, which folder is full and what to do,
not "cannot write a segment to the store" at every try, and stores every span once
space is back; the consumer lag sampler past its cap of held samples does not say
at every sample that it drops the oldest, which its full-disk notice said."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from choreoscope.nats_server import EmbeddedNats
from store import StoreLayout
from tests.collector.full_disk_collector import COLLECTOR_PRELUDE, collect_on_a_full_disk

# A real collector on the full disk, sampling consumer lag every 0.2 s with room for
# only a few held samples, while an exporter publishes a span batch every 0.2 s; once
# span ingest told of the full disk and tried for some seconds more, the filler goes.
# Prints the spans published and those stored after, as JSON.
COLLECTOR = (
    COLLECTOR_PRELUDE
    + """
import nats
import collector.consumer_lag
from instrumentation import wire
from tests.collector.batches import columnar_batch

collector.consumer_lag.MAX_HELD_ROWS = 5  # a few samples: past it at the second or third
logging.getLogger("collector.consumer_lag").setLevel(logging.DEBUG)

def said(text):
    return any(text in m for m in told)

async def main():
    stop = asyncio.Event()
    config = CollectorConfig(
        data_dir=data, servers=[url], otlp_http=None, decode_workers=0,
        flush_interval=0.2, consumer_lag_interval=0.2, maintenance_interval=60,
    )
    collector = asyncio.create_task(run_collector(config, stop=stop))
    nc = await nats.connect(url)
    js = nc.jetstream()
    published = 0

    async def export_for(seconds):
        nonlocal published
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                await js.publish(
                    f"{wire.SPANS_SUBJECT_PREFIX}scorer", columnar_batch(published, 5),
                    headers={wire.CONTENT_TYPE: wire.CONTENT_TYPE_COLUMNAR},
                )
                published += 5
            except nats.js.errors.NoStreamResponseError:  # the collector creates it
                pass
            await asyncio.sleep(0.2)

    async def export_until(predicate):
        while not predicate():
            await export_for(0.5)

    await asyncio.wait_for(export_until(lambda: said("span ingest cannot write")
                                        and said("dropping the")), 60)
    await export_for(5)  # a few tries more, all refused
    filler.unlink()
    await until(lambda: said("span ingest writes to"))
    stored = 0
    deadline = time.monotonic() + 30
    while stored < published and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        stored = open_store(data).execute("SELECT count(*) FROM spans").fetchone()[0]
    await nc.close()
    stop.set()
    await collector
    print(json.dumps({"published": published, "stored": stored}))

asyncio.run(main())
"""
)


@pytest.mark.skipif(sys.platform != "linux", reason="a small disk of its own needs Linux")
def test_span_ingest_on_a_full_disk_says_once_what_to_do_and_loses_no_span(
    nats_server: EmbeddedNats, store_layout: StoreLayout, tmp_path: Path
) -> None:
    # was: "cannot write a segment to the store at …: IOException: …" at every try,
    # and "dropping the N oldest consumer lag samples" at every sample
    data, log, printed = collect_on_a_full_disk(
        COLLECTOR, store=store_layout, tmp_path=tmp_path, nats_url=nats_server.url
    )
    assert "cannot write a segment to the store" not in log, log
    # told once in all those tries, naming the store, what it holds back and the fix
    assert log.count("span ingest cannot write in ") == 1, log
    assert f"span ingest cannot write in {data}" in log
    assert "(span segments): no space left on its disk" in log
    assert "stay unacknowledged in JetStream" in log
    assert log.count(f"span ingest writes to {data} again: space is back") == 1, log
    # the sampler dropped its oldest samples while the disk was full, and said it only
    # at the debug level: its notice had said so
    assert "DEBUG collector.consumer_lag dropping the" in log
    assert "ERROR collector.consumer_lag dropping the" not in log, log
    # the spans exported while the disk was full waited in JetStream, and are stored now
    counts = printed
    assert counts["stored"] == counts["published"] > 0
