"""The compile cache on the real engine: a hit skips the compile, and nobody can poison it."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from ce_ws.sandbox.compile_cache import cache_path
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID

CACHE = cache_path("/tmp", TEST_SERVER_ID)
# __TIME__ is the compile's wall clock: the same value again means no compile ran.
STAMPED = '#include <stdio.h>\nint main(void){printf("compiled at %s\\n", __TIME__);}\n'
#: Seconds of compiling (the compiler runs the loop): a compile of its own,
#: started a second after this one, would print a later time.
SLOW_STAMPED = r"""
#include <cstdio>
constexpr unsigned spin(unsigned rounds) {
    unsigned x = 0;
    for (unsigned round = 0; round < rounds; ++round)
        for (unsigned i = 0; i < 100000; ++i) x = x * 3 + i;
    return x;
}
constexpr unsigned value = spin(8);
int main() { std::printf("compiled at %s %u\n", __TIME__, value); }
"""
#: Run twice by a hostile user, then once by another with the very same files.
HOSTILE = r"""
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    puts("genuine program");
    DIR *d = opendir("/opt/ce/cache");
    printf("list=%s\n", d ? "listed" : strerror(errno));
    int fd = open("/opt/ce/cache/planted", O_WRONLY | O_CREAT, 0755);
    printf("plant=%s\n", fd >= 0 ? "planted" : strerror(errno));
    fd = open("/proc/self/exe", O_WRONLY);
    printf("self=%s\n", fd >= 0 ? "writable" : strerror(errno));
    /* Replace its own copy: only this box's /tmp has it. */
    unlink("/tmp/main");
    fd = open("/tmp/main", O_WRONLY | O_CREAT, 0755);
    const char *fake = "#!/bin/sh\necho poisoned\n";
    printf("replaced=%d\n", fd >= 0 && write(fd, fake, strlen(fake)) > 0);
    return 0;
}
"""


async def run_c(client: TestClient[Any, Any], source: str) -> tuple[dict[str, Any], str]:
    """One C run by its own WebSocket client: its `exit` and its output."""
    async with TermClient.connect(client) as term:
        exit_message = await term.run_to_exit("c", source)
        return exit_message, term.text()


def cached_programs() -> list[Path]:
    return sorted(CACHE.iterdir())


async def test_an_unchanged_program_runs_again_without_compiling(
    client: TestClient[Any, Any],
) -> None:
    first, first_output = await run_c(client, STAMPED)
    assert (first["status"], first["exit_code"]) == ("exited", 0), first_output
    await asyncio.sleep(1.1)  # a compile now would print another time
    again, again_output = await run_c(client, STAMPED)
    assert (again["status"], again["exit_code"]) == ("exited", 0), again_output
    stamp = next(line for line in first_output.splitlines() if "compiled at" in line)
    assert stamp in again_output
    changed, changed_output = await run_c(client, STAMPED.replace("compiled", "built"))
    assert changed["exit_code"] == 0 and "built at" in changed_output
    assert len(cached_programs()) == 2


async def test_runs_of_the_same_files_at_once_compile_once(
    client: TestClient[Any, Any],
) -> None:
    """A class runs the teacher's program at once: the second run takes the first's compile."""
    async with TermClient.connect(client) as first, TermClient.connect(client) as second:
        assert (await first.run("cpp", SLOW_STAMPED))["type"] == "started"
        await first.next_message("stage")
        first_ends = asyncio.create_task(first.wait_exit(timeout=90))  # reads as frames come
        await asyncio.sleep(1.1)  # a compile of its own now would print a later time
        assert (await second.run("cpp", SLOW_STAMPED))["type"] == "started"
        second_started = time.time()
        ended = [await first_ends, await second.wait_exit(timeout=90)]
    assert [e["exit_code"] for e in ended] == [0, 0], ended
    assert "queued" not in second.types()
    # The first compile was still under way when the second run began.
    assert first.output_times[0][0] > second_started, (first.output_times[0], second_started)
    stamps = [
        line for term in (first, second) for line in term.text().splitlines() if "compiled" in line
    ]
    assert len(stamps) == 2 and stamps[0] == stamps[1], stamps
    assert len(cached_programs()) == 1


async def test_a_compile_starved_of_cpu_holds_up_no_run_of_the_same_files_in_other_limits(
    client: TestClient[Any, Any],
) -> None:
    """Asking for a sliver of a CPU makes one's own compile slow, never everyone else's run."""
    async with TermClient.connect(client) as starved, TermClient.connect(client) as other:
        started = await starved.run("cpp", SLOW_STAMPED, limits={"cpus": 0.05})
        assert started["type"] == "started", started
        await starved.next_message("stage")
        await asyncio.sleep(1.1)  # its compile is under way, at 5% of a CPU
        ended = await other.run_to_exit("cpp", SLOW_STAMPED)
        assert ended["exit_code"] == 0, other.text()
        assert "compiled at" in other.text()
        await starved.send(type="kill")
        killed = await starved.wait_exit(timeout=60)
    # Still compiling when `other` ended: `other` compiled on its own.
    assert (killed["stage"], killed["status"]) == ("compile", "killed"), killed


async def test_runs_of_the_same_broken_files_each_show_the_compilers_words(
    client: TestClient[Any, Any],
) -> None:
    """Nothing kept to share: every run that waited compiles on its own and sees why it failed."""
    broken = SLOW_STAMPED.replace("int main() {", "int main() { undeclared_name();")
    terms = [TermClient.connect(client) for _ in range(3)]
    async with terms[0] as one, terms[1] as two, terms[2] as three:
        for term in (one, two, three):
            assert (await term.run("cpp", broken))["type"] == "started"
        ended = await asyncio.gather(*(t.wait_exit(timeout=90) for t in (one, two, three)))
    for term, exit_message in zip((one, two, three), ended, strict=True):
        assert (exit_message["stage"], exit_message["status"]) == ("compile", "compile_error")
        assert "undeclared_name" in term.text(), term.text()
    assert not cached_programs()


async def test_the_cache_folder_is_closed_to_other_host_users(
    client: TestClient[Any, Any],
) -> None:
    exit_message, _ = await run_c(client, STAMPED)
    assert exit_message["exit_code"] == 0
    folder = CACHE.lstat()
    assert (folder.st_uid, folder.st_gid, stat.S_IMODE(folder.st_mode)) == (
        os.geteuid(), 65534, 0o710,
    )  # fmt: skip
    (program,) = cached_programs()
    info = program.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o440


async def test_a_hostile_user_cannot_poison_another_users_run_of_the_same_files(
    client: TestClient[Any, Any],
) -> None:
    """Same key (the same files), two users: the attacker's runs change nothing for the other."""
    for _ in range(2):  # a miss that fills the cache, then a hit
        exit_message, output = await run_c(client, HOSTILE)
        assert exit_message["exit_code"] == 0, output
        assert "genuine program" in output and "list=Permission denied" in output, output
        assert "plant=Read-only file system" in output, output
        assert "self=Text file busy" in output and "replaced=1" in output, output
    (program,) = cached_programs()
    kept = program.read_bytes()
    victim_exit, victim_output = await run_c(client, HOSTILE)
    assert victim_exit["exit_code"] == 0, victim_output
    assert "genuine program" in victim_output and "poisoned" not in victim_output
    assert cached_programs() == [program] and program.read_bytes() == kept
    assert kept.startswith(b"\x7fELF")


async def test_with_the_cache_off_every_run_compiles(make_client: MakeClient) -> None:
    client = await make_client(compile_cache={"enabled": False})
    first, first_output = await run_c(client, STAMPED)
    await asyncio.sleep(1.1)
    again, again_output = await run_c(client, STAMPED)
    assert first["exit_code"] == again["exit_code"] == 0
    stamp = next(line for line in first_output.splitlines() if "compiled at" in line)
    assert stamp not in again_output
    assert not CACHE.exists()
