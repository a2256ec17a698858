"""The embedded nats-server starts with JetStream, and survives a restart."""

from __future__ import annotations

import nats

from choreoscope.nats_server import EmbeddedNats, _bindable, _ephemeral_ports, free_port


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


def test_a_picked_port_is_free_and_not_one_outgoing_connections_can_take() -> None:
    """A cluster node dials its peers before they are up; the local ports of
    those dials come from the ephemeral range and once took a peer's port."""
    ephemeral = _ephemeral_ports()
    for _ in range(50):
        port = free_port()
        assert _bindable("127.0.0.1", port)
        if ephemeral is not None:
            assert port not in ephemeral
