"""A flood never grows the server's memory; the flow-control window holds."""

from __future__ import annotations

import asyncio

from tests.integration.server_process import server_process
from tests.integration.terminal import TermClient

MIB = 1024 * 1024
FLOOD = "yes 'spam spam spam spam spam spam spam spam spam spam'"


async def test_flood_to_a_client_that_stops_reading_keeps_server_memory_bounded() -> None:
    with server_process(
        CE_MAXIMA__OUTPUT_BYTES=str(1024 * MIB), CE_DEFAULTS__WALL_MS="60000"
    ) as server:
        async with TermClient.connect_url(server.ws_url, max_msg_size=0) as term:
            await term.run("bash", FLOOD, limits={"output_bytes": 1024 * MIB})
            await term.expect(b"spam")
            baseline = server.rss_bytes()
            samples = []
            for _ in range(10):  # the client reads nothing for 3 s
                await asyncio.sleep(0.3)
                samples.append(server.rss_bytes())
            growth = max(samples) - baseline
            assert growth < 32 * MIB, f"server grew by {growth / MIB:.1f} MiB"
            await term.send(type="kill")
            # Draining what was buffered proves the flood was held back, not dropped.
            exit_message = await term.wait_exit(timeout=60)
            assert exit_message["status"] == "killed"
            assert exit_message["output_bytes"] == len(term.output)


async def test_flow_control_window_stops_output_until_acked(term: TermClient) -> None:
    await term.run("bash", FLOOD, flow_control=True, limits={"output_bytes": 8 * MIB})
    await term.expect(b"spam")
    # Read without acking until nothing more comes.
    held = -1
    while held != len(term.output):
        held = len(term.output)
        await term.drain(0.5)
    assert 256 * 1024 <= held < 256 * 1024 + MIB, held
    await term.send(type="ack", bytes=held)
    await term.drain(0.5)
    assert len(term.output) > held, "acking should let more output through"
    await term.send(type="kill")
    await term.wait_exit()
