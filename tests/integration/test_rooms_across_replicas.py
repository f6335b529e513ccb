"""A room held by one replica, watched through another (replicas sharing a Redis).

The presenter is on replica A; viewers reach replica B, which finds the room
in Redis and relays A's viewer stream. They must see what a viewer of A sees:
the code, the live run, a late joiner's replay of the screen, the count, the
end; read-only; and a clear answer when the room is unknown or its replica
is gone.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import aiohttp

from ce_ws.runs.fanout import TERMINAL_RESET
from tests.integration.redis_server import redis_replica, two_replicas
from tests.integration.stalled_socket import StalledSocket
from tests.integration.terminal import TermClient
from tests.integration.test_rooms_isolation import MIB, rate

_WATCHED_FLOODS = 12
#: What a replica logs when it closes a viewer that fell behind.
_DROPPED = "closing a viewer 1013"
SCREEN_THEN_ASK = (
    'print("screen-one")\nprint("screen-two")\nname = input("name? ")\nprint(f"hello {name}!")\n'
)


#: The replicas reach each other from loopback: each trusts the other as a proxy.
TRUST_EACH_OTHER = {"CE_TRUSTED_PROXIES": '["127.0.0.1/32"]'}


async def share(presenter: TermClient) -> str:
    await presenter.send(type="share")
    shared = await presenter.next_message("shared", "error")
    assert shared["type"] == "shared", shared
    return str(shared["room"])


async def test_a_viewer_through_the_other_replica_watches_live_late_join_included(
    tmp_path: Path,
) -> None:
    # Presenter and viewer are one client (loopback): two sockets, the relay not a third.
    two_sockets = {"CE_CAPACITY__MAX_CONNECTIONS_PER_CLIENT": "2"}
    with two_replicas(tmp_path, **TRUST_EACH_OTHER, **two_sockets) as (_, a, b):
        async with TermClient.connect_url(a.ws_url) as presenter:
            room = await share(presenter)
            await presenter.send(type="code", language="python", code=SCREEN_THEN_ASK)
            started = await presenter.run("python", SCREEN_THEN_ASK, tty={"cols": 100, "rows": 30})
            await presenter.expect(b"name? ")
            # The watch page is served by either replica.
            async with aiohttp.ClientSession() as http, http.get(f"{b.url}/watch/{room}") as page:
                assert page.status == 200
            async with TermClient.connect_url(b.ws_url) as late:
                await late.send(type="watch", room=room)
                joined = await late.next_message("watching", "error")
                assert joined["type"] == "watching", joined
                assert (joined["code"], joined["run"]) == (SCREEN_THEN_ASK, started), joined
                assert (joined["cols"], joined["rows"]) == (100, 30)
                # The late joiner's replay: a reset, then the screen so far.
                await late.expect(b"name? ")
                assert late.output.startswith(TERMINAL_RESET), late.output[:40]
                assert b"screen-one" in late.output and b"screen-two" in late.output
                # The presenter's replica counts the viewer on the other one.
                while presenter.messages[-1] != {"type": "viewers", "count": 1}:
                    await presenter.next_message("viewers")

                # Read-only there too.
                await late.send(type="run", language="bash", code="echo no")
                refused = await late.next_message("error")
                assert refused["code"] == "read_only", refused

                await presenter.keys("Ada\r")
                await late.expect(b"hello Ada!")
                ended = await presenter.wait_exit()
                assert (await late.next_message("exit")) == ended

                await presenter.send(type="unshare")
                closed = await late.next_message("room_closed")
                assert closed["reason"] == "unshared", closed
                # No longer watching: the viewer may run its own program on B.
                mine = await late.run_to_exit("bash", "echo mine")
                assert (mine["status"], mine["exit_code"]) == ("exited", 0), mine


async def test_an_unknown_room_and_a_vanished_replica_get_clear_answers(tmp_path: Path) -> None:
    with two_replicas(tmp_path, **TRUST_EACH_OTHER) as (redis, a, b):
        async with TermClient.connect_url(b.ws_url) as viewer:
            await viewer.send(type="watch", room="A" * 22)
            unknown = await viewer.next_message("error")
            assert unknown["code"] == "unknown_room", unknown

        async with (
            TermClient.connect_url(a.ws_url) as presenter,
            TermClient.connect_url(b.ws_url) as viewer,
        ):
            room = await share(presenter)
            await viewer.send(type="watch", room=room)
            assert (await viewer.next_message("watching"))["room"] == room
            a.crash()  # kill -9: no room_closed from A
            closed = await viewer.next_message("room_closed", timeout=10)
            assert closed["reason"] == "server_shutdown", closed
            # B goes on serving this viewer, and the room is no longer found.
            mine = await viewer.run_to_exit("bash", "echo still here")
            assert (mine["status"], mine["exit_code"]) == ("exited", 0), mine
            await viewer.send(type="watch", room=room)
            gone = await viewer.next_message("error")
            assert gone["code"] == "unknown_room" and "does not answer" in gone["message"], gone
        # Restarted with its id, A removes what its crash left (its compile cache here).
        with redis_replica(redis, tmp_path, "a", **TRUST_EACH_OTHER):
            pass


async def test_a_viewer_through_the_other_replica_that_never_reads_slows_no_one(
    tmp_path: Path,
) -> None:
    env = {
        "CE_MAXIMA__OUTPUT_BYTES": str(64 * MIB),
        "CE_SHARING__VIEWER_STALL_S": "2",
        "CE_SHARING__VIEWER_FLOOD_FRAME_MS": "0",  # redraws as often as they come
    }
    with two_replicas(tmp_path, **TRUST_EACH_OTHER, **env) as (_, a, b):
        async with TermClient.connect_url(a.ws_url, max_msg_size=0) as presenter:
            room = await share(presenter)
            alone = await rate(presenter)
            stalled = await StalledSocket.connect(b.port)
            try:
                stalled.send(type="watch", room=room)
                # The viewer on B counts on A, where the room is.
                while presenter.messages[-1] != {"type": "viewers", "count": 1}:
                    await presenter.next_message("viewers")
                relay_before = b.rss_bytes()
                # The viewer on B reads nothing. Floods (each sends it about 2 MB of
                # redraws) until more waits for it than the sockets on the way hold and
                # B drops it, as its log says: a few floods, at most _WATCHED_FLOODS.
                rates = []
                while len(rates) < _WATCHED_FLOODS and _DROPPED not in b.log():
                    rates.append(await rate(presenter))
                watched = statistics.median(rates)
                relay_growth = b.rss_bytes() - relay_before
                summary = (
                    f"MiB/s alone {alone / MIB:.1f}, watched through B {watched / MIB:.1f};"
                    f" B +{relay_growth / MIB:.1f} MiB"
                )
                print(summary)
                assert watched >= 0.5 * alone, summary
                assert relay_growth < 32 * MIB, summary
                assert await stalled.close_code(timeout_s=30) == 1013
            finally:
                await stalled.aclose()
            await presenter.send(type="ping")
            await presenter.next_message("pong")
