"""The embedded nats-server starts with JetStream, and survives a restart."""

from __future__ import annotations

import nats

from choreoscope.nats_server import EmbeddedNats


async def test_embedded_server_serves_jetstream_and_keeps_streams_across_restart(
    nats_server: EmbeddedNats,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="T", subjects=["t.>"])
    ack = await js.publish("t.one", b"x")
    assert ack.seq == 1
    await nc.close()

    nats_server.restart()
    nc = await nats.connect(nats_server.url)
    info = await nc.jetstream().stream_info("T")
    assert info.state.messages == 1
    await nc.close()
