#!/usr/bin/env bash
# Build the pages' browser bundles: static/src → static/dist/{app,watch,replay}.{js,css}
# (the playground, a room's watch page, a recording's replay page);
# and install the npm packages, Codapi's widget among them (served unchanged
# by the browser tests of the Codapi surface).
#
# Idempotent: installs npm packages only when node_modules is missing or older
# than package-lock.json, and rebuilds only when a source (static/src, the lock
# file or this script) is newer than the bundle. Says what it does either way.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SRC=static/src
OUT=static/dist
# One bundle per page: name=entry (each bundle carries its own CSS beside it).
ENTRIES=(app="$SRC/main.js" watch="$SRC/watch.js" replay="$SRC/replay.js")
BUNDLES=("$OUT/app.js" "$OUT/app.css" "$OUT/watch.js" "$OUT/watch.css" "$OUT/replay.js" "$OUT/replay.css")
# The oldest output decides whether a source is newer.
BUNDLE=$OUT/app.js
# npm writes this inside node_modules on every install: a better age than the folder's.
INSTALLED=node_modules/.package-lock.json
# The devDependency only the tests use, so nothing below would notice it missing.
CODAPI_WIDGET=node_modules/@antonz/codapi/dist/snippet.js

say() { printf '[assets] %s\n' "$*" >&2; }
die() { printf '[assets] ERROR: %s\n' "$*" >&2; exit 1; }

if ! command -v npm >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "npm not found: install Node.js 18+ (apt-get install nodejs npm)"
    say "installing Debian packages: nodejs npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null; } \
        || die "apt-get install nodejs npm failed: install Node.js 18+ and retry"
fi

if [ ! -f "$INSTALLED" ] || [ package-lock.json -nt "$INSTALLED" ] || [ ! -f "$CODAPI_WIDGET" ]; then
    say "installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    touch "$INSTALLED"
else
    say "npm packages up to date"
fi

stale=""
for bundle in "${BUNDLES[@]}"; do
    [ -f "$bundle" ] || stale="no $bundle yet"
done
if [ -z "$stale" ]; then
    newer=$(find "$SRC" package-lock.json "${BASH_SOURCE[0]}" -type f -newer "$BUNDLE" -print -quit)
    [ -z "$newer" ] || stale="$newer changed"
fi

if [ -z "$stale" ]; then
    say "bundles up to date: ${BUNDLES[*]}"
    exit 0
fi

say "building ${BUNDLES[*]} ($stale)"
mkdir -p "$OUT"
# app.js last: it is the one whose age is compared above.
node_modules/.bin/esbuild "${ENTRIES[@]}" \
    --bundle \
    --format=esm \
    --target=es2022 \
    --minify \
    --sourcemap \
    --legal-comments=linked \
    --log-level=warning \
    --outdir="$OUT"
touch "$BUNDLE"
for bundle in "${BUNDLES[@]}"; do
    say "built: $(du -h "$bundle" | cut -f1) $bundle"
done
