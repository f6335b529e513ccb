#!/usr/bin/env bash
# Make sure a program the tests need is installed from Debian's packages.
#
# Usage: ensure-package.sh PROGRAM PACKAGE, e.g. `ensure-package.sh
# /usr/bin/chromium chromium` (the browser tests drive this system browser;
# Playwright never downloads one of its own, which our machines cannot reach)
# or `ensure-package.sh /usr/sbin/nginx nginx` (the load balancer in front of
# replicas). Idempotent: when PROGRAM exists it changes nothing and says so.
set -euo pipefail

PROGRAM=$1
PACKAGE=$2

say() { printf '[%s] %s\n' "$PACKAGE" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$PACKAGE" "$*" >&2; exit 1; }
version() { echo "$PROGRAM, $PACKAGE $(dpkg-query -W -f='${Version}' "$PACKAGE" 2>/dev/null || echo '(not from dpkg)')"; }

if [ -x "$PROGRAM" ]; then
    say "present: $(version)"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "$PROGRAM is missing; run as root or: apt-get install -y $PACKAGE"

say "installing Debian package: $PACKAGE"
# Try the cached package lists first; refresh them only when that fails.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$PACKAGE" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$PACKAGE" >/dev/null; } \
    || die "apt-get install $PACKAGE failed: run 'apt-get update && apt-get install $PACKAGE' and retry"

[ -x "$PROGRAM" ] || die "$PACKAGE installed but $PROGRAM is missing"
say "installed: $(version)"
