#!/usr/bin/env bash
# Build (once) the local PostgreSQL 15 image used by the Molecule scenarios.
#
#   molecule/scripts/build_pg_image.sh        # prints the image to use on stdout
#
# No container registry is needed: the root filesystem is made by debootstrap
# (Debian bookworm, which ships PostgreSQL 15) from the Debian mirror that apt
# on this machine already uses, and turned into an image by `docker import`.
# The image also carries python3 + psycopg 3, so a container can double as an
# Ansible managed host (docker connection).
#
# Environment:
#   RELMIGRATE_PG_IMAGE      image to use. Unset or local/...: build that tag
#                            (default local/relmigrate-postgres:15) unless it
#                            exists. Anything else (e.g. postgres:15): use that
#                            image as is, no build; pulled if missing.
#   RELMIGRATE_PG_REBUILD=1  rebuild even if the local tag exists
#   RELMIGRATE_DEBIAN_MIRROR Debian mirror URL; default: read from apt sources
#   RELMIGRATE_DEBIAN_SUITE  default bookworm (must provide postgresql-15)
#   RELMIGRATE_PG_BUILD_DIR  scratch parent dir for the root fs (default /var/tmp)
#
# Run-time interface of the built image (/usr/local/bin/pg-start):
#   POSTGRES_PASSWORD  superuser password (required on first start)
#   POSTGRES_USER      superuser name (default postgres)
#   PGPORT             port (default 5432); listen on 127.0.0.1 unless
#   POSTGRES_LISTEN_ADDRESSES is set. Use `docker run --network host`.
#   Extra arguments to pg-start are passed to postgres (e.g. -c fsync=off).
# The official postgres:15 image accepts the same POSTGRES_PASSWORD/PGPORT,
# but has no python3, so it cannot serve as an Ansible managed host.
set -euo pipefail

DEFAULT_IMAGE=local/relmigrate-postgres:15
IMAGE=${RELMIGRATE_PG_IMAGE:-$DEFAULT_IMAGE}
SUITE=${RELMIGRATE_DEBIAN_SUITE:-bookworm}
BUILD_PARENT=${RELMIGRATE_PG_BUILD_DIR:-/var/tmp}
PG_MAJOR=15

log() { printf 'build_pg_image.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker CLI missing (run molecule/scripts/dockerd.sh start)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (run molecule/scripts/dockerd.sh start)"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# An image outside local/ is an external one (official postgres:15, a
# mirror's copy...): never build it, just make sure it is there.
if [[ "$IMAGE" != local/* ]]; then
    if ! image_exists "$IMAGE"; then
        log "pulling $IMAGE"
        docker pull "$IMAGE" >&2 || die "cannot pull $IMAGE (no registry?); unset RELMIGRATE_PG_IMAGE to build locally"
    fi
    log "using external image $IMAGE (no build; note: no python3 inside unless the image has it)"
    printf '%s\n' "$IMAGE"
    exit 0
fi

# Parallel scenarios may call us at once: one builder, the others wait.
LOCK=${BUILD_PARENT}/relmigrate-pg-image.lock
exec 9>"$LOCK"
flock 9

if image_exists "$IMAGE" && [ "${RELMIGRATE_PG_REBUILD:-0}" != 1 ]; then
    log "image $IMAGE exists; nothing to build"
    printf '%s\n' "$IMAGE"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root; run as root"
command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap via apt"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

# Print "URI SUITE" for every enabled binary entry of apt's sources, in both
# the deb822 (*.sources) and the one-line (*.list) formats.
apt_entries() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no")
                    for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
                types = ""; enabled = ""; nu = 0; ns = 0
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
                if (key == "types") types = $0
                else if (key == "enabled") enabled = tolower($0)
                else if (key == "uris") nu = split($0, u, " ")
                else if (key == "suites") ns = split($0, s, " ")
            }
            END { flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' "$f"
    done
}

# The Debian archive is the entry whose suite is this machine's release
# codename itself (not -updates/-security, not a third-party repo).
find_mirror() {
    local codename="" uri suite
    if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091  # host file, not part of the repo
        codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
    fi
    [ -n "$codename" ] || return 1
    while read -r uri suite; do
        case "$uri" in http://* | https://*) ;; *) continue ;; esac
        if [ "$suite" = "$codename" ] && [[ "$uri" != *security* ]]; then
            printf '%s\n' "${uri%/}"
            return 0
        fi
    done < <(apt_entries)
    return 1
}

MIRROR=${RELMIGRATE_DEBIAN_MIRROR:-}
if [ -z "$MIRROR" ]; then
    MIRROR=$(find_mirror) || die "no Debian mirror found in apt sources; set RELMIGRATE_DEBIAN_MIRROR"
fi
log "building $IMAGE from $MIRROR suite $SUITE"

ROOTFS=$(mktemp -d "$BUILD_PARENT/relmigrate-pg-rootfs.XXXXXX")
cleanup() { rm -rf --one-file-system "$ROOTFS"; }
trap cleanup EXIT

start_s=$(date +%s)
# minbase + the few packages we need; postgresql-15 pulls libpq5/ICU/tzdata.
debootstrap --variant=minbase \
    --include="postgresql-$PG_MAJOR,python3,python3-psycopg" \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.debootstrap.log" 2>&1 || {
    tail -n 30 "$ROOTFS.debootstrap.log" >&2
    die "debootstrap failed (full log: $ROOTFS.debootstrap.log)"
}
rm -f "$ROOTFS.debootstrap.log"

# The package's postinst made a cluster 15/main we never use; pg-start makes
# its own in $PGDATA with the password given at run time.
rm -rf "$ROOTFS/var/lib/postgresql/$PG_MAJOR" "$ROOTFS/etc/postgresql/$PG_MAJOR"

# Trim what a throwaway test server never reads. Keep usr/share/zoneinfo
# (Debian's postgres uses system tz data) and the C.UTF-8 locale (in libc).
rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/lintian \
    "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* \
    "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
# JIT: without llvmjit.so postgres silently runs without JIT, which lets us
# drop LLVM (~100 MB) that nothing else in the image links.
rm -rf "$ROOTFS/usr/lib/postgresql/$PG_MAJOR/lib/llvmjit"* \
    "$ROOTFS/usr/lib/postgresql/$PG_MAJOR/lib/bitcode"
rm -f "$ROOTFS"/usr/lib/*-linux-gnu/libLLVM-*.so*

install -d -m 0755 "$ROOTFS/usr/local/bin"
cat >"$ROOTFS/usr/local/bin/pg-start" <<'PGSTART'
#!/bin/sh
# Start PostgreSQL in the foreground; initialise $PGDATA on first start.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${PGPORT:=5432}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_LISTEN_ADDRESSES:=127.0.0.1}"
export PGDATA PGPORT

# As root: fix ownership, then re-exec as postgres (setpriv execs in place,
# so postgres stays PID 1 and gets docker's stop signal directly).
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /run/postgresql
    chown postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "pg-start: POSTGRES_PASSWORD is required to initialise $PGDATA" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    # peer for the in-container socket (docker exec -u postgres psql),
    # scram-sha-256 for every TCP client.
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=peer --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    {
        echo "host all all 0.0.0.0/0 scram-sha-256"
        echo "host all all ::/0 scram-sha-256"
    } >>"$PGDATA/pg_hba.conf"
    echo "pg-start: initialised $PGDATA (superuser $POSTGRES_USER)" >&2
fi

exec postgres -D "$PGDATA" -p "$PGPORT" \
    -c listen_addresses="$POSTGRES_LISTEN_ADDRESSES" -c jit=off "$@"
PGSTART
chmod 0755 "$ROOTFS/usr/local/bin/pg-start"

# docker import (engine 20.10) takes no STOPSIGNAL: SIGTERM is a smart
# shutdown that waits for clients; `docker run --stop-signal SIGINT` is faster.
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
    --change 'CMD ["/usr/local/bin/pg-start"]' \
    --change "ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'ENV LANG=C.UTF-8' \
    --message "relmigrate PostgreSQL $PG_MAJOR ($SUITE, debootstrap)" \
    - "$IMAGE" >/dev/null

log "built $IMAGE in $(($(date +%s) - start_s))s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
printf '%s\n' "$IMAGE"
