#!/usr/bin/env bash
# Start/stop/inspect a Docker engine for the Molecule scenarios on a machine
# without an init system.
#
#   molecule/scripts/dockerd.sh start|stop|status
#
# Environment:
#   RELMIGRATE_DOCKER_DIR      state dir: data-root, exec-root, pidfile, log
#                              (default /var/lib/docker-relmigrate)
#   RELMIGRATE_DOCKER_TIMEOUT  seconds to wait for `docker info` (default 60)
#   RELMIGRATE_DOCKER_STORAGE_DRIVER  optional --storage-driver (e.g. vfs)
#
# The engine runs with --iptables=false --bridge=none so that nothing in the
# host firewall or routing changes; containers must use `--network host`.
# `stop` only stops an engine this script started (marker file in the state
# dir); an engine that was already answering is left alone.
set -euo pipefail

STATE_DIR=${RELMIGRATE_DOCKER_DIR:-/var/lib/docker-relmigrate}
TIMEOUT=${RELMIGRATE_DOCKER_TIMEOUT:-60}
PIDFILE="$STATE_DIR/dockerd.pid"
LOGFILE="$STATE_DIR/dockerd.log"
MARKER="$STATE_DIR/started-by-relmigrate"

log() { printf 'dockerd.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# apt, dockerd and the default socket all need root; use sudo when we are not.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "must run as root (or with sudo available)"
    SUDO=(sudo)
fi

engine_up() { "${SUDO[@]}" docker info >/dev/null 2>&1; }

# PID from our pidfile if that process is still alive, else nothing.
our_pid() {
    local pid
    [ -r "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] || return 1
    "${SUDO[@]}" kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

install_missing() {
    local pkgs=()
    command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || pkgs+=(debootstrap)
    [ "${#pkgs[@]}" -eq 0 ] && return 0
    log "installing ${pkgs[*]} via apt"
    # Package lists may be absent (trimmed images); refresh once if so.
    if ! apt-cache show "${pkgs[0]}" >/dev/null 2>&1; then
        "${SUDO[@]}" apt-get update -qq
    fi
    # No init system: postinst cannot start a service, which is what we want.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

start() {
    if engine_up; then
        if our_pid >/dev/null; then
            log "already running (pid $(our_pid), started by this script)"
        else
            log "a Docker engine already answers; leaving it alone"
        fi
        return 0
    fi
    install_missing
    "${SUDO[@]}" mkdir -p "$STATE_DIR"
    local extra=()
    if [ -n "${RELMIGRATE_DOCKER_STORAGE_DRIVER:-}" ]; then
        extra+=(--storage-driver "$RELMIGRATE_DOCKER_STORAGE_DRIVER")
    fi
    # A stale pidfile would make dockerd refuse to start.
    our_pid >/dev/null || "${SUDO[@]}" rm -f "$PIDFILE"
    log "starting dockerd (state in $STATE_DIR, log $LOGFILE)"
    # setsid: detach from our process group so the engine outlives this shell
    # and a Ctrl-C in the caller's terminal does not reach it.
    # The redirect runs inside the (possibly sudo'ed) shell so the log file
    # under the root-owned state dir can be written.
    # shellcheck disable=SC2016  # $1/$@ are expanded by the inner sh on purpose
    "${SUDO[@]}" sh -c 'log=$1; shift; exec setsid "$@" </dev/null >>"$log" 2>&1' \
        sh "$LOGFILE" dockerd \
        --iptables=false --bridge=none --ip-forward=false --ip-masq=false \
        --data-root "$STATE_DIR/data" \
        --exec-root "$STATE_DIR/exec" \
        --pidfile "$PIDFILE" \
        "${extra[@]}" &
    "${SUDO[@]}" touch "$MARKER"
    local waited=0
    until engine_up; do
        if [ "$waited" -ge "$TIMEOUT" ]; then
            log "no answer from 'docker info' after ${TIMEOUT}s; last log lines:"
            "${SUDO[@]}" tail -n 20 "$LOGFILE" >&2 || true
            stop || true
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "engine up after ~${waited}s (pid $(our_pid || echo '?'))"
}

stop() {
    if [ ! -e "$MARKER" ]; then
        log "no engine started by this script; nothing to stop"
        return 0
    fi
    local pid
    if pid=$(our_pid); then
        log "stopping dockerd pid $pid"
        "${SUDO[@]}" kill -TERM "$pid"
        # dockerd stops its containers and its managed containerd on TERM;
        # give it time before the hard kill.
        local waited=0
        while "${SUDO[@]}" kill -0 "$pid" 2>/dev/null; do
            if [ "$waited" -ge 30 ]; then
                log "dockerd did not exit in 30s; sending KILL"
                "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 1
            waited=$((waited + 1))
        done
    fi
    # The managed containerd writes its pid under our exec-root; reap it if
    # dockerd died without taking it along.
    local cpid_file="$STATE_DIR/exec/containerd/containerd.pid"
    if [ -r "$cpid_file" ]; then
        local cpid
        cpid=$(cat "$cpid_file")
        if [ -n "$cpid" ] && "${SUDO[@]}" kill -0 "$cpid" 2>/dev/null; then
            log "stopping leftover containerd pid $cpid"
            "${SUDO[@]}" kill -TERM "$cpid" 2>/dev/null || true
        fi
    fi
    "${SUDO[@]}" rm -f "$MARKER" "$PIDFILE"
    log "stopped"
}

status() {
    local pid
    if pid=$(our_pid); then
        if engine_up; then
            echo "running (pid $pid, started by this script, state $STATE_DIR)"
        else
            echo "starting or unhealthy (pid $pid, no answer from docker info)"
        fi
        return 0
    fi
    if engine_up; then
        echo "running (not started by this script)"
        return 0
    fi
    echo "stopped"
    return 3
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
