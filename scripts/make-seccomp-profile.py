#!/usr/bin/env python3
"""Generate docker/seccomp.json: Docker's default seccomp profile, hardened.

Source of the base profile
--------------------------
Docker Engine 20.10's default seccomp profile, i.e. moby's
``profiles/seccomp/default.json`` at v20.10.24 (the engine version this project
runs on). It is taken from Debian bookworm's package
``golang-github-docker-docker-dev`` 20.10.24+dfsg1-1+deb12u1, which is built
from the same source as the ``docker.io`` engine package and ships the file at
``/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json``
(upstream generates it from ``profiles/seccomp/default_linux.go``, the profile
compiled into dockerd). The upstream file is NOT kept in this repository; only
the result is.

Changes applied (and nothing else)
----------------------------------
1. ``io_uring_setup``, ``io_uring_enter`` and ``io_uring_register`` are removed
   from every rule, so they fall to the profile's default action
   (SCMP_ACT_ERRNO, i.e. EPERM). Newer moby (25.0+) does the same.
2. ``socket`` with arg0 == 40 (AF_VSOCK) is refused: ``socket`` is taken out of
   the unconditional allow list and re-allowed only when arg0 != 40, so
   socket(AF_VSOCK, ...) falls to the default action (EPERM). This is the rule
   newer moby (23.0+) ships. If the base profile already has that rule it is
   kept as is and not duplicated.
3. Every 32-bit sub-architecture is taken out of ``archMap`` (on x86-64:
   ``SCMP_ARCH_X86`` and ``SCMP_ARCH_X32``), so a 32-bit system call (``int
   $0x80``, x32) from a 64-bit container fails the filter's architecture check
   and the thread is killed with SIGSYS. The reason: i386's ``socketcall``
   multiplexer carries the socket arguments in memory, where seccomp cannot
   see them, and libseccomp turns every allowed socket call into an allowed
   ``socketcall``, so ``socketcall(SYS_SOCKET, [AF_VSOCK, ...])`` went around
   rule 2 (and an explicit deny rule for it is overridden). The runtime image
   is 64-bit only, and gVisor has no 32-bit ABI either.
4. ``ptrace`` is no longer allowed unconditionally (Docker allows it on
   kernels 4.8+); it stays allowed only with CAP_SYS_PTRACE, which a run never
   has, as on older kernels. Every process of a run, the container's init
   included, has the same uid, so without Yama a program could attach to the
   init, stop it and keep the container alive after the program ends (and
   poke at its memory). No language in the runtime image needs ptrace.

Usage
-----
    python3 scripts/make-seccomp-profile.py [BASE.json] [-o docker/seccomp.json]

Without BASE.json the script downloads the Debian package above with
``apt-get download`` into a temporary directory and reads the file from it
(nothing is installed). ``--check`` exits 1 if the output file is not what the
script would write.
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import subprocess
import sys
import tempfile

DEB_PACKAGE = "golang-github-docker-docker-dev"
DEB_VERSION = "20.10.24+dfsg1-1+deb12u1"
DEB_PATH = "usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"

IO_URING = ("io_uring_setup", "io_uring_enter", "io_uring_register")
AF_VSOCK = 40

SOCKET_RULE = {
    "names": ["socket"],
    "action": "SCMP_ACT_ALLOW",
    "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}],
    "comment": "Code Executor: socket() is allowed for every address family "
    "but AF_VSOCK (40), which falls to the default action (EPERM)",
    "includes": {},
    "excludes": {},
}

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "docker", "seccomp.json")


def fetch_base() -> dict:
    """apt-get download the Debian package and read default.json from it."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"{DEB_PACKAGE}={DEB_VERSION}"
        try:
            subprocess.run(["apt-get", "download", spec], cwd=tmp, check=True)
        except subprocess.CalledProcessError:
            # The exact version may have been superseded; take the candidate.
            subprocess.run(["apt-get", "download", DEB_PACKAGE], cwd=tmp, check=True)
        debs = glob.glob(os.path.join(tmp, "*.deb"))
        if len(debs) != 1:
            sys.exit(f"expected one .deb, found {debs}")
        print(f"base profile from {os.path.basename(debs[0])}", file=sys.stderr)
        out = os.path.join(tmp, "x")
        subprocess.run(["dpkg-deb", "-x", debs[0], out], check=True)
        with open(os.path.join(out, DEB_PATH), encoding="utf-8") as f:
            return json.load(f)


def is_vsock_socket_rule(rule: dict) -> bool:
    return (
        rule.get("names") == ["socket"]
        and rule.get("action") == "SCMP_ACT_ALLOW"
        and [(a.get("index"), a.get("value"), a.get("op")) for a in rule.get("args") or []]
        == [(0, AF_VSOCK, "SCMP_CMP_NE")]
    )


def transform(base: dict) -> dict:
    prof = copy.deepcopy(base)
    rules = prof["syscalls"]

    # 1. drop io_uring_* everywhere (and any rule left with no names).
    kept = []
    for rule in rules:
        names = [n for n in rule["names"] if n not in IO_URING]
        if not names:
            continue
        rule["names"] = names
        kept.append(rule)
    rules[:] = kept

    # 2. socket: never unconditionally allowed; allowed only for arg0 != 40.
    has_vsock_rule = any(is_vsock_socket_rule(r) for r in rules)
    socket_allowed_at = None
    for i, rule in enumerate(rules):
        if (
            "socket" in rule["names"]
            and rule["action"] == "SCMP_ACT_ALLOW"
            and not rule.get("args")
            and not rule.get("includes")
            and not rule.get("excludes")
        ):
            rule["names"].remove("socket")
            if socket_allowed_at is None:
                socket_allowed_at = i
    if not has_vsock_rule:
        pos = 1 if socket_allowed_at is None else socket_allowed_at + 1
        rules.insert(pos, copy.deepcopy(SOCKET_RULE))
    rules[:] = [r for r in rules if r["names"]]

    # 4. ptrace only with CAP_SYS_PTRACE (never granted).
    for rule in rules:
        if "ptrace" in rule["names"] and not (rule.get("includes") or {}).get("caps"):
            rule["names"].remove("ptrace")
    rules[:] = [r for r in rules if r["names"]]

    # 3. no 32-bit compat ABI.
    for entry in prof["archMap"]:
        entry["subArchitectures"] = []

    check(prof)
    return prof


def check(prof: dict) -> None:
    """Assert the properties the profile exists for."""
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO", prof["defaultAction"]
    for entry in prof["archMap"]:
        assert not entry["subArchitectures"], f"32-bit ABI allowed: {entry}"
    for rule in prof["syscalls"]:
        for n in IO_URING:
            assert n not in rule["names"], f"{n} still listed"
        if "socket" in rule["names"] and rule["action"] == "SCMP_ACT_ALLOW":
            assert is_vsock_socket_rule(rule), f"socket allowed by {rule}"
    assert any(is_vsock_socket_rule(r) for r in prof["syscalls"]), "no socket rule"
    for rule in prof["syscalls"]:
        if "ptrace" in rule["names"]:
            assert rule["includes"].get("caps") == ["CAP_SYS_PTRACE"], f"ptrace allowed by {rule}"


def render(prof: dict) -> str:
    # Upstream's key order is kept (json preserves it), tabs as upstream uses.
    return json.dumps(prof, indent="\t", ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", nargs="?", help="Docker 20.10 default.json (default: fetch the Debian package)")
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="only compare with the output file")
    args = ap.parse_args()

    if args.base:
        with open(args.base, encoding="utf-8") as f:
            base = json.load(f)
    else:
        base = fetch_base()
    text = render(transform(base))

    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{args.output} is out of date", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date", file=sys.stderr)
        return 0

    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
