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
# With CE_SCRATCH_ENGINE_TLS_PORT set it also listens on that loopback port
# with TLS client certificates (dockerd --tlsverify), made at start under
# /run/<name>-tls: ca.pem, and the client's cert.pem and key.pem.
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
TLS_PORT=${CE_SCRATCH_ENGINE_TLS_PORT:-}
TLS_DIR=/run/$NAME-tls
WAIT_SECONDS=60

say() { printf '[scratch-engine] %s\n' "$*" >&2; }
die() { printf '[scratch-engine] ERROR: %s\n' "$*" >&2; exit 1; }
scratch() { docker -H "unix://$SOCKET" "$@"; }
answers() { scratch info >/dev/null 2>&1; }
running_pid() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"; }

# A throwaway CA, the engine's certificate for 127.0.0.1, and one client's.
make_certificates() {
    rm -rf "$TLS_DIR" && mkdir -p -m 0700 "$TLS_DIR" && cd "$TLS_DIR"
    local quiet=(-days 2 -nodes -newkey rsa:2048)
    openssl req -x509 "${quiet[@]}" -keyout ca-key.pem -out ca.pem -subj /CN=ce-scratch-ca 2>/dev/null
    openssl req "${quiet[@]}" -keyout server-key.pem -out server.csr -subj /CN=127.0.0.1 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
        -out server-cert.pem -days 2 -extfile server.ext 2>/dev/null
    openssl req "${quiet[@]}" -keyout key.pem -out client.csr -subj /CN=ce-scratch-client 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
        -out cert.pem -days 2 -extfile client.ext 2>/dev/null
    cd - >/dev/null
}

start() {
    local listen=()
    if [ -n "$TLS_PORT" ]; then
        listen=(--tlsverify --tlscacert "$TLS_DIR/ca.pem" --tlscert "$TLS_DIR/server-cert.pem"
                --tlskey "$TLS_DIR/server-key.pem" --host "tcp://127.0.0.1:$TLS_PORT")
    fi
    if answers; then
        say "already answers at $SOCKET"
    else
        [ "$(id -u)" -eq 0 ] || die "starting a dockerd needs root"
        mkdir -p "$(dirname "$LOG")"
        say "starting dockerd at $SOCKET${TLS_PORT:+ and TLS port $TLS_PORT} (log: $LOG)"
        [ -z "$TLS_PORT" ] || make_certificates
        # Its own everything, so it shares nothing with the main engine; setsid
        # and closed descriptors so it outlives whoever started it cleanly.
        setsid nohup dockerd --host "unix://$SOCKET" --pidfile "$PIDFILE" \
            --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
            --bridge=none --iptables=false --ip6tables=false "${listen[@]}" \
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
