#!/usr/bin/env bash
# A second, disposable Docker engine for the fault tests: they stop and start
# it during live runs, which they must never do to the engine everything else
# on the machine uses. It is a real dockerd (Debian's docker.io, the same
# daemon.json runtimes), with its own socket, data root and exec root, and
# the runtime image copied into it from the main engine.
#
#   scratch-engine.sh start   start it (idempotent) and make sure it has the image
#   scratch-engine.sh stop    stop it (SIGTERM, as a service manager does) and wait
#
# Needs root and the main engine (scripts/ensure-engine.sh) with the image built.
set -euo pipefail

NAME=${CE_SCRATCH_ENGINE_NAME:-ce-scratch-engine}
SOCKET=/run/$NAME.sock
PIDFILE=/run/$NAME.pid
DATA_ROOT=/var/lib/$NAME
EXEC_ROOT=/run/$NAME
LOG=${CE_ENGINE_LOG_DIR:-/var/log/code-executor}/$NAME.log
IMAGE=${CE_SANDBOX__IMAGE:-code-executor-runtime}
WAIT_SECONDS=60

say() { printf '[scratch-engine] %s\n' "$*" >&2; }
die() { printf '[scratch-engine] ERROR: %s\n' "$*" >&2; exit 1; }
scratch() { docker -H "unix://$SOCKET" "$@"; }
answers() { scratch info >/dev/null 2>&1; }
running_pid() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"; }

start() {
    if answers; then
        say "already answers at $SOCKET"
    else
        [ "$(id -u)" -eq 0 ] || die "starting a dockerd needs root"
        mkdir -p "$(dirname "$LOG")"
        say "starting dockerd at $SOCKET (log: $LOG)"
        # Its own everything, so it shares nothing with the main engine; setsid
        # and closed descriptors so it outlives whoever started it cleanly.
        setsid nohup dockerd --host "unix://$SOCKET" --pidfile "$PIDFILE" \
            --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
            --bridge=none --iptables=false --ip6tables=false \
            >>"$LOG" 2>&1 </dev/null &
        local waited=0
        until answers; do
            [ "$waited" -lt "$WAIT_SECONDS" ] || { tail -n 20 "$LOG" >&2; die "no answer within ${WAIT_SECONDS}s"; }
            sleep 0.5
            waited=$((waited + 1))
        done
        say "answers"
    fi
    local wanted have
    wanted=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null) \
        || die "the main engine has no $IMAGE: run 'python -m ce_ws image' first"
    have=$(scratch image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
    if [ "$have" = "$wanted" ]; then
        say "has $IMAGE"
    else
        say "copying $IMAGE from the main engine (once per image build, ~20 s)"
        docker save "$IMAGE" | scratch load >/dev/null
    fi
}

stop() {
    local pid
    pid=$(running_pid) || { say "not running"; return; }
    say "stopping dockerd $pid"
    kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
        [ "$waited" -lt $((WAIT_SECONDS * 2)) ] || die "dockerd $pid did not stop"
        sleep 0.5
        waited=$((waited + 1))
    done
    say "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop" ;;
esac
