"""Corpus groups 1, 3, 4, 5, 17, 18: what a program sees and may do from inside.

Each probe prints `key=value` facts; the expected facts are written out per
runtime. Where gVisor differs, the reason is its own kernel (the Sentry): it
answers system calls itself, so the host kernel's reply is never seen.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.hostile.harness import Corpus

PROGRAMS = Path(__file__).parent / "programs"
ZERO = "0000000000000000"
EPERM = "EPERM"


def program(name: str) -> str:
    return (PROGRAMS / name).read_text()


def expect(found: dict[str, str], expected: dict[str, str]) -> None:
    assert {key: found.get(key) for key in expected} == expected


INSIDE_COMMON = {
    "ids": "65534,65534,65534,65534,[65534]",
    **dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd"), ZERO),
    "no_new_privs": "1",
    "mount_": "ro",
    "mount_work": "ro",
    "write_etc": "EACCES",
    # group 3: the running binaries cannot be opened for writing
    "self_exe": "EACCES",
    "pid1_exe": "EACCES",
    "pid1_exe_via_fd": "EACCES",
    # group 5: no engine socket, no way out, no raw or packet sockets
    "sockets": "[]",
    "dns": "gaierror",
    "raw_socket": EPERM,
    "packet_socket": EPERM,
    "interfaces": "['lo']",
    "done": "yes",
}
INSIDE = {
    "runc": {
        "CapAmb": ZERO,
        "Seccomp": "2",  # filter mode: docker/seccomp.json
        "write_root": "EROFS",
        "write_work": "EROFS",
        **dict.fromkeys(
            ("tcp_egress", "engine_tcp", "metadata", "ipv6_egress", "udp_egress"), "ENETUNREACH"
        ),
    },
    "runsc": {
        "CapAmb": "?",  # not reported by gVisor's /proc
        # gVisor (this build) does not apply the OCI seccomp profile inside;
        # its Sentry runs under its own host seccomp filter instead.
        "Seccomp": "0",
        # gVisor checks permissions before the read-only mount: EACCES.
        "write_root": "EACCES",
        "write_work": "EACCES",
        **dict.fromkeys(
            ("tcp_egress", "engine_tcp", "metadata", "ipv6_egress", "udp_egress"), "EHOSTUNREACH"
        ),
    },
}


async def test_configuration_read_from_inside_is_as_set(corpus: Corpus) -> None:
    """Groups 1, 3, 5: ids, capabilities, NoNewPrivs, seccomp, mounts, exe, network."""
    # Its walks for sockets took gVisor past the default 10 s of CPU time on a
    # freshly started engine (a fresh-clone run): timed out, not a finding.
    outcome = await corpus.attack("python", program("inside.py"), limits={"cpu_ms": 30_000})
    assert (outcome.status, outcome.exit["exit_code"]) == ("exited", 0), (
        outcome.exit,
        outcome.text(),
    )
    expect(outcome.facts(), INSIDE_COMMON | INSIDE[corpus.runtime])


HOST_IDENTITY = {
    # Masked by the engine (MaskedPaths): /dev/null bound over them.
    "runc": {"cmdline": "empty", "boot_id": "empty"},
    # gVisor's own /proc: a boot line of its own, no boot_id at all.
    "runsc": {"cmdline": "BOOT_IMAGE=/vmlinuz-4.4.0-gvisor quiet", "boot_id": "ENOENT"},
}


async def test_the_hosts_boot_line_and_boot_id_are_hidden(corpus: Corpus) -> None:
    """Group 1: /proc/cmdline and the kernel's boot_id tell nothing of the host."""
    outcome = await corpus.attack("python", program("host_identity.py"))
    assert (outcome.status, outcome.exit["exit_code"]) == ("exited", 0), outcome.text()
    expect(outcome.facts(), HOST_IDENTITY[corpus.runtime] | {"done": "yes"})
    for host_file in ("/proc/cmdline", "/proc/sys/kernel/random/boot_id"):
        host_value = Path(host_file).read_text().strip()
        assert host_value and host_value not in outcome.text(), host_file


SYSCALLS = {
    "runc": {
        **dict.fromkeys(
            (
                "io_uring_setup",
                "vsock",
                "unshare_user",
                "unshare_mount",
                "bpf",
                "perf_event_open",
                "userfaultfd",
                "keyctl",
                "mount",
                "ptrace_pid1",
                "ptrace_traceme",
                "clock_settime",
                "open_by_handle_at",
                "init_module",
                "kexec_load",
            ),
            EPERM,
        ),
        # A 32-bit system call fails the profile's architecture check.
        "abi32": "SYS",
        "done": "yes",
    },
    "runsc": {
        # Served by the Sentry's own implementations, inside the sandbox: the
        # host kernel's io_uring and namespaces are never reached.
        "io_uring_setup": "ok",
        "unshare_user": "ok",
        "unshare_mount": "ok",
        "vsock": "EAFNOSUPPORT",
        "bpf": "ENOSYS",
        "perf_event_open": "ENODEV",
        "userfaultfd": "ENOSYS",
        "keyctl": "EACCES",
        "mount": EPERM,
        "ptrace_pid1": EPERM,
        # The profile does not apply inside gVisor (see SECURITY.md); the
        # Sentry's own ptrace traces only inside the sandbox.
        "ptrace_traceme": "ok",
        "clock_settime": EPERM,
        "open_by_handle_at": "EOPNOTSUPP",
        "init_module": "ENOSYS",
        "kexec_load": "ENOSYS",
        # gVisor has no 32-bit ABI: `int $0x80` does not reach socketcall.
        "abi32_socketcall": "not-a-socket",
        "abi32": "exit0",
        "done": "yes",
    },
}


async def test_dangerous_system_calls_are_refused_while_the_program_runs_on(
    corpus: Corpus,
) -> None:
    """Group 4: io_uring, AF_VSOCK, unshare, bpf, ptrace of PID 1... and 32-bit socketcall."""
    outcome = await corpus.attack("c", program("syscalls.c"))
    assert (outcome.status, outcome.exit["exit_code"]) == ("exited", 0), outcome.text()
    expect(outcome.facts(), SYSCALLS[corpus.runtime])


#: Opening /dev/tty without a controlling terminal: Linux's ENXIO, gVisor's EIO.
NO_TERMINAL = {"runc": "No such device or address", "runsc": "Input/output error"}


async def test_the_compiler_has_no_terminal_to_wait_on(corpus: Corpus) -> None:
    """The launcher starts the compiler in a session of its own: source that
    includes the terminal cannot make it read (or wait on) the program's input."""
    outcome = await corpus.attack("c", '#include "/dev/tty"\nint main(void) { return 0; }\n')
    assert outcome.status == "compile_error", outcome.exit
    assert f"/dev/tty: {NO_TERMINAL[corpus.runtime]}" in outcome.output.decode(errors="replace")


async def test_server_secrets_are_invisible(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group 17: /proc/1/environ and env show nothing of the server."""
    secret = f"s3cret-{uuid.uuid4().hex}"
    monkeypatch.setenv("CE_HOSTILE_SECRET", secret)
    outcome = await corpus.attack("python", program("secrets.py"))
    assert outcome.status == "exited", outcome.text()
    facts = outcome.facts()
    # The image's plot backend and its size bound, and the init's signal
    # forwarding, are the only additions.
    allowed = [
        "HOME", "HOSTNAME", "INLINE_PLOT_MAX_BYTES", "LANG", "MPLBACKEND", "PATH",
        "PYTHONDONTWRITEBYTECODE", "TERM", "TINI_KILL_PROCESS_GROUP",
    ]  # fmt: skip
    assert facts["env_keys"] == str(allowed)
    assert facts["environ_1"] == str(allowed)
    for leaked in (secret, "CE_", "DOCKER", "ce-test-"):
        assert leaked not in outcome.text()


async def test_markers_written_in_one_run_are_absent_in_the_next(corpus: Corpus) -> None:
    """Group 18: nothing persists from run N to run N+1."""
    token = uuid.uuid4().hex
    code = program("persistence.py")
    # Walking the whole image takes gVisor up to ~5 s of CPU time (the default budget is 10).
    limits = {"cpu_ms": 30_000}
    written = await corpus.attack("python", code, args=["write", token], limits=limits)
    places = written.facts().get("written", "")
    assert "'/tmp'" in places and "'/dev/shm'" in places, (written.exit, places)
    found = await corpus.attack("python", code, args=["find", token], limits=limits, canary=False)
    assert found.facts().get("found") == "[]", (found.exit, found.text()[-2000:])
