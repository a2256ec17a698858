"""The collector's consumer lag sampler and signal (heartbeat, advisory) writer on a
full disk: each says once, plainly, which folder is full and what to do, not DuckDB's
raw error at every try; the heartbeats sent meanwhile are stored once space is back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from choreoscope.nats_server import EmbeddedNats
from store import StoreLayout
from tests.collector.full_disk_collector import COLLECTOR_PRELUDE, collect_on_a_full_disk

# A real collector sampling consumer lag every 0.2 s on the full disk, while a service
# beats every 0.2 s; once both writers told of the full disk and tried for some seconds
# more, the filler goes. Prints the heartbeats stored after, as JSON.
COLLECTOR = (
    COLLECTOR_PRELUDE
    + """
import nats

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
    beats = 0

    async def beat_for(seconds):
        nonlocal beats
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            beats += 1
            beat = {"service": "scorer", "instance": "s-1", "at": time.time(),
                    "interval_s": 0.2, "spans_dropped": beats}
            await nc.publish("choreo.heartbeat.scorer", json.dumps(beat).encode())
            await asyncio.sleep(0.2)

    async def beat_until(predicate):
        while not predicate():
            await beat_for(0.5)

    await asyncio.wait_for(beat_until(lambda: said("the signal writer cannot write")
                                      and said("the consumer lag sampler cannot write")), 60)
    await beat_for(4)  # some 20 samples and a few signal writes more, all refused
    filler.unlink()
    await until(lambda: said("the signal writer writes to")
                and said("the consumer lag sampler writes to"))
    await asyncio.sleep(1)
    await nc.close()
    stop.set()
    await collector
    con = open_store(data)
    stored = con.execute("SELECT max(spans_dropped) FROM heartbeats").fetchone()[0]
    print(json.dumps({"beats": beats, "stored": stored}))

asyncio.run(main())
"""
)


@pytest.mark.skipif(sys.platform != "linux", reason="a small disk of its own needs Linux")
def test_lag_and_signal_writers_on_a_full_disk_say_once_what_to_do_and_lose_no_beat(
    nats_server: EmbeddedNats, store_layout: StoreLayout, tmp_path: Path
) -> None:
    # was: "cannot write consumer lag to the store at …: IO Error: Could not write
    # file …" every sample, and "cannot write signals …" at every retry
    data, log, printed = collect_on_a_full_disk(
        COLLECTOR, store=store_layout, tmp_path=tmp_path, nats_url=nats_server.url
    )
    assert "cannot write consumer lag to the store" not in log, log
    assert "cannot write signals to the store" not in log, log
    for writer, what in (
        ("the consumer lag sampler", "consumer lag samples"),
        ("the signal writer", "heartbeats and advisories"),
    ):
        # told once in all those tries, naming the store, what it holds back and the fix
        assert log.count(f"{writer} cannot write in ") == 1, log
        assert f"{writer} cannot write in {data}" in log
        assert f"({what}): no space left on its disk" in log
        assert log.count(f"{writer} writes to {data} again: space is back") == 1, log
    assert log.count("Free space there (`df -h") >= 2
    # the beats sent while the disk was full waited in JetStream, and are stored now
    counts = printed
    assert counts["stored"] == counts["beats"]
