#!/usr/bin/env bash
# Make sure a Docker engine answers; install and start one when we may.
#
# Idempotent: when `docker info` already answers, it changes nothing and says
# so. It never stops, kills or restarts an engine it did not start itself.
set -euo pipefail

LOG_DIR=${CE_ENGINE_LOG_DIR:-/var/log/code-executor}
WAIT_SECONDS=${CE_ENGINE_WAIT_SECONDS:-60}
DAEMON_JSON=/etc/docker/daemon.json
APT_PACKAGES=(docker.io runsc debootstrap)

say() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }

missing_packages() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
    done
}

install_packages() {
    local missing
    missing=$(missing_packages)
    if [ -z "$missing" ]; then
        say "packages present: ${APT_PACKAGES[*]}"
        return
    fi
    say "installing Debian packages: $missing"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null; } \
        || die "apt-get install $missing failed: run 'apt-get update && apt-get install $missing' and retry"
}

register_runsc() {
    # Merge, never clobber: other runtimes and options in daemon.json stay.
    mkdir -p "$(dirname "$DAEMON_JSON")"
    python3 - "$DAEMON_JSON" <<'PY'
import json, os, sys
path = sys.argv[1]
config = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as f:
        config = json.load(f)
wanted = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--platform=ptrace"]}
runtimes = config.setdefault("runtimes", {})
if runtimes.get("runsc") != wanted:
    runtimes["runsc"] = wanted
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    print("[engine] registered runsc in " + path, file=sys.stderr)
PY
}

start_dockerd() {
    mkdir -p "$LOG_DIR"
    say "starting dockerd in the background (log: $LOG_DIR/dockerd.log)"
    # No container of ours has a network, so the engine needs no bridge or
    # iptables rules; that also keeps it working on hosts without iptables.
    setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false \
        >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
    echo $! >"$LOG_DIR/dockerd.pid"
    local waited=0
    until engine_answers; do
        if [ "$waited" -ge "$WAIT_SECONDS" ]; then
            tail -n 20 "$LOG_DIR/dockerd.log" >&2 || true
            die "dockerd did not answer within ${WAIT_SECONDS}s; see $LOG_DIR/dockerd.log"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "dockerd answers after ${waited}s"
}

main() {
    if engine_answers; then
        say "engine already answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null)); nothing to do"
        return
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        die "no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}. Install and start one (Debian: 'apt-get install docker.io runsc debootstrap' and 'dockerd &' as root), or run 'make run' as root on a Debian-like host."
    fi
    install_packages
    register_runsc
    if [ -S /var/run/docker.sock ] && pgrep -x dockerd >/dev/null; then
        die "a dockerd is running but does not answer; it was not started by this script, so it is left alone: check 'docker info'"
    fi
    start_dockerd
}

main "$@"
