"""The embedded nats-server starts with JetStream, and survives a restart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nats
import pytest

from choreoscope.nats_server import (
    EmbeddedNats,
    NatsServerError,
    _bindable,
    _ephemeral_ports,
    free_port,
)
from choreoscope.stack import nats_spec
from choreoscope.supervisor import ChildFailedError, Supervisor


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


def test_a_server_already_on_the_port_is_not_taken_for_ours(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # the other server's INFO line was read as ours being ready
    ours = EmbeddedNats(store_dir=tmp_path / "ours", port=nats_server.port)
    with pytest.raises(NatsServerError, match="is the port taken"):
        ours.start()
    assert not ours.running


def test_up_s_embedded_server_is_not_taken_for_ready_while_another_holds_its_port(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    # `up` and `demo` took the other server's answer on the port for theirs being ready
    spec = nats_spec(data=tmp_path / "data", host="127.0.0.1", port=nats_server.port)
    with (
        Supervisor(log_dir=tmp_path / "logs", poll_interval=0.05) as supervisor,
        pytest.raises(ChildFailedError, match="exited while starting"),
    ):
        supervisor.start(spec)


@pytest.mark.parametrize("command", ["nats", "dashboard"])
def test_a_command_given_a_taken_port_says_so_and_which_flag_moves_it(
    nats_server: EmbeddedNats, tmp_path: Path, command: str
) -> None:
    # `nats` said "ready" then "exited unexpectedly"; `dashboard` announced its URL,
    # then Streamlit failed on the port
    done = subprocess.run(
        [sys.executable, "-m", "choreoscope.cli", command, "--data", str(tmp_path / "d"),
         "--port", str(nats_server.port)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "is in use" in done.stderr and "pass --port with a free one" in done.stderr
    assert "Traceback" not in done.stderr
    assert "ready on" not in done.stderr and "Ctrl-C" not in done.stdout
