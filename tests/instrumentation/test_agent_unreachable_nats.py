"""An Agent whose NATS URL leads nowhere: it keeps waiting, and its log says for what."""

from __future__ import annotations

import asyncio
import logging

from choreoscope.nats_server import EmbeddedNats, free_port
from instrumentation import Agent
from tests.instrumentation.deterministic_spans import eventually, in_memory_telemetry


async def test_an_agent_that_cannot_reach_nats_names_the_url_and_what_to_check(tmp_path, caplog):
    port = free_port()  # nothing listens there yet
    url = f"nats://127.0.0.1:{port}"
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent("scorer", nats_url=url, telemetry=telemetry, fetch_timeout=0.2)

    @agent.on("recruit.cv.parsed")
    async def score(event):
        pass

    caplog.set_level(logging.INFO, logger="instrumentation.agent")
    run = asyncio.create_task(agent.run())
    await asyncio.sleep(2)  # several connect attempts fail meanwhile
    assert not run.done()  # it waits for NATS, it does not give up

    said = [r for r in caplog.records if r.name == "instrumentation.agent"]
    assert [r.levelno for r in said] == [logging.WARNING]  # one line, not one per attempt
    line = said[0].getMessage()
    assert line.startswith(f"agent scorer cannot reach NATS at {url}: ConnectionRefusedError")
    assert "nats-server is running there" in line
    assert "`choreoscope nats` or `make demo` starts one" in line
    assert "the Agent's nats_url= names it" in line
    assert "CHOREOSCOPE_NATS" in line
    assert said[0].exc_info is None  # no traceback

    with EmbeddedNats(store_dir=tmp_path / "nats", port=port):
        await agent.wait_ready(timeout=15)
        await eventually(lambda: f"agent scorer connected to {url} after" in caplog.text)
        agent.stop()
        await asyncio.wait_for(run, 15)


async def test_the_url_named_is_the_one_given_in_nats_options(caplog):
    given = f"nats://127.0.0.1:{free_port()}"
    telemetry, _ = in_memory_telemetry("scorer")
    agent = Agent(
        "scorer",
        nats_url="nats://127.0.0.1:4222",
        nats_options={"servers": [given]},
        telemetry=telemetry,
    )
    caplog.set_level(logging.WARNING, logger="instrumentation.agent")
    connecting = asyncio.create_task(agent.connect())
    await eventually(lambda: "cannot reach NATS" in caplog.text, timeout=15)
    connecting.cancel()
    await asyncio.gather(connecting, return_exceptions=True)
    assert f"cannot reach NATS at {given}:" in caplog.text
    assert "the Agent's nats_options['servers'] names it" in caplog.text
