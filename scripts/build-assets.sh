#!/usr/bin/env bash
# Build the browser bundles, minified, each with a gzipped copy beside it (the
# server sends that one to browsers that accept gzip):
# - the pages: static/src → static/dist/{app,watch,replay}.{js,css} (the
#   playground, a room's watch page, a recording's replay page);
# - the /docs viewer: swagger-ui-dist's files copied to static/dist/docs;
# - the embed widget: static/src/embed/embed.js → static/dist/widget/embed.js and
#   its lazily loaded chunks in static/dist/widget/embed/ (served as /embed.js and
#   /embed/…), plus static/dist/widget/refused.js (what a page of an origin the
#   server does not allow gets as /embed.js). Prints the widget's gzipped size.
# And install the npm packages, Codapi's widget among them (served unchanged
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
WIDGET=$OUT/widget
# Over this, gzipped, before the first Run, the build warns.
WIDGET_GOAL_KIB=150
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
for bundle in "${BUNDLES[@]}" "$BUNDLE.gz" "$WIDGET/embed.js" "$WIDGET/refused.js" "$OUT/docs/docs.js"; do
    [ -f "$bundle" ] || stale="no $bundle yet"
done
if [ -z "$stale" ]; then
    newer=$(find "$SRC" package-lock.json "${BASH_SOURCE[0]}" scripts/embed-size.mjs -type f -newer "$BUNDLE" -print -quit)
    [ -z "$newer" ] || stale="$newer changed"
fi

if [ -z "$stale" ]; then
    say "bundles up to date: ${BUNDLES[*]}, $WIDGET/, $OUT/docs/"
    exit 0
fi

say "rebuilding ($stale)"
mkdir -p "$OUT"
say "building the widget in $WIDGET/ (old chunks removed first)"
rm -rf "$WIDGET"
# Styles are imported as text: they go into each snippet's shadow root.
node_modules/.bin/esbuild "$SRC/embed/embed.js" \
    --bundle \
    --splitting \
    --format=esm \
    --target=es2022 \
    --minify \
    --sourcemap \
    --legal-comments=linked \
    --loader:.css=text \
    --entry-names='[name]' \
    --chunk-names='embed/[name]-[hash]' \
    --metafile="$WIDGET/meta.json" \
    --log-level=warning \
    --outdir="$WIDGET"
node_modules/.bin/esbuild "$SRC/embed/refused.js" \
    --bundle \
    --format=esm \
    --target=es2022 \
    --minify \
    --loader:.css=text \
    --log-level=warning \
    --outfile="$WIDGET/refused.js"

# /docs: Swagger UI's own prebuilt files, unchanged, and the page's init script.
mkdir -p "$OUT/docs"
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css "$OUT/docs/"
cp "$SRC/docs.js" "$OUT/docs/docs.js"
say "copied the API viewer (swagger-ui-dist) to $OUT/docs"

say "building ${BUNDLES[*]}"
node_modules/.bin/esbuild "${ENTRIES[@]}" \
    --bundle \
    --format=esm \
    --target=es2022 \
    --minify \
    --sourcemap \
    --legal-comments=linked \
    --log-level=warning \
    --outdir="$OUT"

find "$OUT" -type f \( -name '*.js' -o -name '*.css' \) -exec gzip -9 --keep --force {} +
# Last: app.js is the age the next run compares with, so a failed build stays stale.
touch "$BUNDLE"
for bundle in "${BUNDLES[@]}"; do
    say "built: $(du -h "$bundle" | cut -f1) $bundle ($(du -h "$bundle.gz" | cut -f1) gzipped)"
done
say "built: $(find "$WIDGET" -name '*.js' | wc -l) widget files"
node scripts/embed-size.mjs "$WIDGET/meta.json" "$WIDGET_GOAL_KIB"
