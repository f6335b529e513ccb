"""Corpus groups 6, 7, 10, 13, 14, 15: exhausting processes, memory, CPU, fds, argv.

On runsc the pids and memory cgroups also hold gVisor's own tasks and memory
(the server adds `runsc_pids_headroom` and `runsc_memory_headroom_mb`), and
gVisor keeps no pids count of its own: a fork bomb there ends the whole
sandbox when the Sentry can no longer create host threads, instead of the
program seeing EAGAIN. Both are contained; the expected outcomes say which.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SpecRecorder
from tests.hostile.conftest import make_corpus
from tests.hostile.harness import Corpus
from tests.integration.conftest import MakeClient
from tests.leftovers import project_containers

PROGRAMS = Path(__file__).parent / "programs"
MIB = 1024 * 1024
RUNSC_MEMORY_HEADROOM = 64 * MIB  # the default of `runsc_memory_headroom_mb`

FORK_BOMBS = {
    "bash": ":(){ :|:& };:\nsleep 60",  # the script stays, as the bomb's parent
    "python": (
        "import errno, os\n"
        "reported = False\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError as e:\n"
        "        if not reported:\n"
        "            print(f'fork={errno.errorcode[e.errno]}', flush=True)\n"
        "            reported = True\n"
    ),
    "c": (PROGRAMS / "forkbomb.c").read_text(),
}
FORK_REFUSED = {
    "bash": b"Resource temporarily unavailable",
    "python": b"fork=EAGAIN",
    "c": b"fork=EAGAIN",
}


@pytest.mark.parametrize("language", sorted(FORK_BOMBS))
async def test_fork_bomb_is_held_by_the_pids_limit(corpus: Corpus, language: str) -> None:
    """Group 6: the pids limit holds, the run ends by its deadline, the canary is on time."""
    outcome = await corpus.attack(language, FORK_BOMBS[language], limits={"wall_ms": 3000})
    assert outcome.exit["wall_ms"] < 3000 + 2000
    if corpus.runtime == "runc":
        assert outcome.status == "timeout", outcome.exit
        assert FORK_REFUSED[language] in outcome.output
    else:
        # gVisor keeps no pids count: the bomb grows until the Sentry cannot
        # create a host thread (the Go runtime then ends the whole sandbox,
        # and the run is `killed`, saying why) or the memory limit is reached
        # first (each process costs the Sentry a few MiB): usually long before
        # the deadline. Forks under ptrace are slow, so on a loaded host
        # bash's bomb has met the deadline first (a fresh-clone run): the
        # deadline holds it then.
        if outcome.status == "oom":
            assert outcome.exit["exit_code"] == 137, outcome.exit
        elif outcome.status == "killed":
            assert "more processes than its limit allows" in outcome.exit["message"]
        else:
            assert (outcome.status, outcome.exit.get("limit")) == ("timeout", "wall"), outcome.exit


MEMORY_BOMBS = {
    "python-fast": ("python", "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n"),
    "python-slow": (
        "python",
        "import time\nchunks = []\nwhile True:\n"
        "    chunks.append(bytearray(1 << 20))\n    time.sleep(0.01)\n",
    ),
    "c-fast": ("c", (PROGRAMS / "memory.c").read_text()),
    "tmp-files": (
        "python",
        "i = 0\nwhile True:\n    with open(f'/tmp/fill{i}', 'wb') as f:\n"
        "        f.write(b'1' * (4 << 20))\n    i += 1\n",
    ),
}


@pytest.mark.parametrize("case", sorted(MEMORY_BOMBS))
async def test_memory_bomb_gives_oom_within_the_limit(corpus: Corpus, case: str) -> None:
    """Group 7: fast, slow and through /tmp: status `oom`, the peak bounded by the limit."""
    language, code = MEMORY_BOMBS[case]
    outcome = await corpus.attack(language, code, limits={"memory_mb": 48, "wall_ms": 15_000})
    if case == "tmp-files" and corpus.runtime == "runsc":
        # The 64 MiB tmpfs fills before the cgroup (48 MiB plus the Sentry's
        # 64 MiB headroom): gVisor's tmpfs lives in the Sentry's memory.
        assert outcome.status == "exited" and b"No space left on device" in outcome.output
        return
    assert outcome.status == "oom", (outcome.exit, outcome.text()[-300:])
    ceiling = 48 * MIB + (RUNSC_MEMORY_HEADROOM if corpus.runtime == "runsc" else 0)
    assert outcome.exit["memory_peak_bytes"] <= ceiling + MIB


#: A C initializer of 10^8 elements, written as nested macros: the compiler's
#: memory grows fast and without bound (a few seconds to pass 64 MiB).
COMPILER_MEMORY_BOMB = (
    "#define A 1,1,1,1,1,1,1,1,1,1,\n"
    "#define B A A A A A A A A A A\n#define C B B B B B B B B B B\n"
    "#define D C C C C C C C C C C\n#define E D D D D D D D D D D\n"
    "#define F E E E E E E E E E E\n#define G F F F F F F F F F F\n"
    "int big[] = { G G G G G G G G G G 0 };\nint main(void) { return big[0]; }\n"
)


async def test_compiler_exhausting_memory_gives_oom_in_the_compile_stage(corpus: Corpus) -> None:
    """Group 7 at compile time: runc kills the compiler, runsc's whole sandbox dies.

    Either way the run ends `oom` in stage `compile` when it happens, not at
    the compile stage's time limit.
    """
    limits = {"memory_mb": 64, "wall_ms": 15_000}
    outcome = await corpus.attack("c", COMPILER_MEMORY_BOMB, limits=limits)
    assert (outcome.status, outcome.exit["stage"]) == ("oom", "compile"), outcome.exit
    assert outcome.exit["message"] == "the compiler reached the memory limit"
    assert outcome.exit["wall_ms"] < 25_000  # well before the 30 s compile limit
    if corpus.runtime == "runc":  # the compiler died, its driver said so
        assert b"Killed signal terminated program cc1" in outcome.output, outcome.text()


async def test_dev_shm_is_capped_by_its_size(corpus: Corpus) -> None:
    """Group 7: memory through /dev/shm stops at ShmSize (8 MiB) with ENOSPC."""
    code = (
        "import errno\nwritten = 0\ntry:\n    with open('/dev/shm/fill', 'wb') as f:\n"
        "        for _ in range(64):\n            f.write(b'1' * (1 << 20))\n"
        "            f.flush()\n            written += 1\n"
        "except OSError as e:\n    print(f'shm={errno.errorcode[e.errno]}')\n"
        "print(f'shm_mib={written}')\n"
    )
    outcome = await corpus.attack("python", code)
    assert outcome.status == "exited", outcome.exit
    assert {k: outcome.facts().get(k) for k in ("shm", "shm_mib")} == {
        "shm": "ENOSPC",
        "shm_mib": "8",
    }


CPU_BURN = (
    "import multiprocessing, os\n"
    "def burn(_):\n    while True:\n        pass\n"
    "print('burning', flush=True)\n"
    "with multiprocessing.Pool(4) as pool:\n    pool.map(burn, range(4))\n"
)


async def test_cpu_burn_on_all_cores_is_held_to_the_cpu_limit(corpus: Corpus) -> None:
    """Group 10: four burning processes get half a CPU until the deadline."""
    outcome = await corpus.attack("python", CPU_BURN, limits={"cpus": 0.5, "wall_ms": 3000})
    assert outcome.status == "timeout", outcome.exit
    allowed_ms = 0.5 * outcome.exit["wall_ms"] * 1.25 + 300
    assert outcome.exit["cpu_ms"] <= allowed_ms, outcome.exit


ZOMBIES = """\
import os, time
for _ in range(20):  # orphans: reparented to the container's init, which must reap them
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            time.sleep(0.2)
            os._exit(0)
        os._exit(0)
    os.waitpid(child, 0)
for _ in range(5):  # our own children, never waited for
    if os.fork() == 0:
        os._exit(0)
time.sleep(1.0)
parents = []
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    except OSError:
        continue
    if fields[0] == 'Z':
        parents.append(fields[1])
print(f'zombies_of_init={parents.count("1")}')
print(f'zombies_of_main={parents.count(str(os.getpid()))}')
"""


async def test_orphaned_zombies_are_reaped(corpus: Corpus) -> None:
    """Group 13: the container's init reaps orphans; none accumulate."""
    outcome = await corpus.attack("python", ZOMBIES)
    assert (outcome.status, outcome.exit["exit_code"]) == ("exited", 0), outcome.text()
    facts = outcome.facts()
    assert (facts["zombies_of_init"], facts["zombies_of_main"]) == ("0", "5")


FDS = (
    "import errno, os\nfds = []\ntry:\n    while True:\n"
    "        fds.append(os.open('/dev/null', os.O_RDONLY))\n"
    "except OSError as e:\n    print(f'fds={errno.errorcode[e.errno]}')\n"
    "print(f'highest_fd={max(fds)}')\n"
)


async def test_file_descriptor_exhaustion_hits_emfile_at_the_limit(corpus: Corpus) -> None:
    """Group 14: EMFILE at the nofile limit (256)."""
    outcome = await corpus.attack("python", FDS)
    assert outcome.status == "exited", outcome.exit
    assert {k: outcome.facts().get(k) for k in ("fds", "highest_fd")} == {
        "fds": "EMFILE",
        "highest_fd": "255",
    }


ARGV = """\
import errno, subprocess
def attempt(key, **how):
    try:
        subprocess.run(**how)
        print(f'{key}=ok')
    except OSError as e:
        print(f'{key}={errno.errorcode[e.errno]}')
attempt('huge_arg', args=['true', 'x' * (256 << 10)])
attempt('huge_argv', args=['true'] + ['x' * 1000] * 10_000)
attempt('huge_env', args=['true'], env={'BIG': 'x' * (256 << 10)})
"""


#: gVisor's execve refuses the same sizes with ENAMETOOLONG.
TOO_BIG = {"runc": "E2BIG", "runsc": "ENAMETOOLONG"}


async def test_huge_argv_and_env_in_a_child_are_refused(corpus: Corpus) -> None:
    """Group 15: E2BIG for an argument, an argv and an environment over the kernel's caps."""
    outcome = await corpus.attack("python", ARGV)
    assert outcome.status == "exited", outcome.exit
    facts = outcome.facts()
    assert {k: facts.get(k) for k in ("huge_arg", "huge_argv", "huge_env")} == dict.fromkeys(
        ("huge_arg", "huge_argv", "huge_env"), TOO_BIG[corpus.runtime]
    )


async def test_code_over_the_size_cap_is_refused_before_any_container(
    make_client: MakeClient, runtime: str, engine_session: SpecRecorder
) -> None:
    """Group 15: the server refuses oversized code before creating anything."""
    # No warm pool: its refills would create containers of their own.
    corpus = await make_corpus(make_client, runtime, pool={"enabled": False})
    before = len(engine_session.records())
    async with corpus.connect() as term:
        refused = await term.run("python", "#" * (64 * 1024 + 1))
    assert (refused["type"], refused["code"], refused["field"]) == (
        "error",
        "code_too_large",
        "code",
    )
    assert len(engine_session.records()) == before
    assert project_containers() == []
