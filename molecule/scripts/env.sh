#!/usr/bin/env bash
# Source me before running scenario steps by hand (run_all.sh does it):  . molecule/scripts/env.sh
# Exports, unless already set: two free loopback ports for the scenarios' PostgreSQL containers and a random
# superuser password for them (picked once and kept in molecule/.cache/env, 0600, so that `molecule create`,
# `converge`, `verify`... run from different shells agree; delete the file for new ones), the venv on PATH and the
# collections path (this tree + community.docker).
_relmigrate_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_relmigrate_saved="$_relmigrate_repo/molecule/.cache/env"
if [ -z "${RELMIGRATE_PG_PORT_1:-}" ] && [ -r "$_relmigrate_saved" ]; then
  # shellcheck disable=SC1090  # written below by this script
  . "$_relmigrate_saved"
fi
_relmigrate_py="$_relmigrate_repo/.venv/bin/python"
[ -x "$_relmigrate_py" ] || _relmigrate_py=python3
if [ -z "${RELMIGRATE_PG_PORT_1:-}" ] || [ -z "${RELMIGRATE_PG_PORT_2:-}" ]; then
  # Ask the kernel for two distinct free ports (bound together so they differ), then release them.
  read -r RELMIGRATE_PG_PORT_1 RELMIGRATE_PG_PORT_2 < <("$_relmigrate_py" - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
PY
)
  export RELMIGRATE_PG_PORT_1 RELMIGRATE_PG_PORT_2
fi
if [ -z "${RELMIGRATE_PG_PASSWORD:-}" ]; then
  RELMIGRATE_PG_PASSWORD=$("$_relmigrate_py" -c 'import secrets; print(secrets.token_urlsafe(18))')
  export RELMIGRATE_PG_PASSWORD
fi
if [ ! -e "$_relmigrate_saved" ]; then
  mkdir -p "$(dirname "$_relmigrate_saved")"
  (umask 077 && printf 'export RELMIGRATE_PG_PORT_1=%s RELMIGRATE_PG_PORT_2=%s RELMIGRATE_PG_PASSWORD=%s\n' \
    "$RELMIGRATE_PG_PORT_1" "$RELMIGRATE_PG_PORT_2" "$RELMIGRATE_PG_PASSWORD" >"$_relmigrate_saved")
fi
export PATH="$_relmigrate_repo/.venv/bin:$PATH"
ANSIBLE_COLLECTIONS_PATH="$(bash "$_relmigrate_repo/molecule/scripts/collections.sh"):$_relmigrate_repo/.collections"
export ANSIBLE_COLLECTIONS_PATH
unset _relmigrate_repo _relmigrate_py _relmigrate_saved
