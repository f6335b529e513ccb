#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests.
#
# Idempotent: when /usr/bin/chromium exists it changes nothing and says so.
# Playwright drives this system browser; it never downloads a browser build of
# its own (that download is not reachable from our machines or CI).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

say() { printf '[browser] %s\n' "$*" >&2; }
die() { printf '[browser] ERROR: %s\n' "$*" >&2; exit 1; }

if [ -x "$CHROMIUM" ]; then
    say "present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "$CHROMIUM is missing; run as root or: apt-get install -y chromium"

say "installing Debian package: chromium"
# Try the cached package lists first; refresh them only when that fails.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
    || die "apt-get install chromium failed: run 'apt-get update && apt-get install chromium' and retry"

[ -x "$CHROMIUM" ] || die "chromium installed but $CHROMIUM is missing"
say "installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
