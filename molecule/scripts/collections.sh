#!/usr/bin/env bash
# Put the collections Molecule needs besides ours into molecule/.collections (git-ignored), offline from Galaxy:
# community.docker (molecule-plugins' docker driver, and the docker connection of the `remote` scenario), its one
# dependency community.library_inventory_filtering_v1, and ansible.posix (the driver's create playbook names
# ansible.posix.synchronize, which Ansible must resolve even though pre-built images never run it). All are taken from the `ansible` package on PyPI
# (version pinned in requirements/constraints.txt), downloaded once with pip and cached; nothing else of that
# package is installed.
#
#   molecule/scripts/collections.sh      # prints the collections path to prepend to ANSIBLE_COLLECTIONS_PATH
#
# Environment: RELMIGRATE_PIP_CACHE  where the downloaded wheel is kept (default /var/tmp/relmigrate-pip)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest="$repo/molecule/.collections"
cache=${RELMIGRATE_PIP_CACHE:-/var/tmp/relmigrate-pip}
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3

log() { printf 'collections.sh: %s\n' "$*" >&2; }

pin=$(sed -n -E 's/^ansible==([0-9][^[:space:]]*).*/\1/p' "$repo/requirements/constraints.txt")
[ -n "$pin" ] || { log "no ansible==X pin in requirements/constraints.txt"; exit 1; }
stamp="$dest/.from-ansible-$pin-v2"
if [ -e "$stamp" ] && [ -f "$dest/ansible_collections/community/docker/MANIFEST.json" ]; then
  printf '%s\n' "$dest"
  exit 0
fi

mkdir -p "$cache"
wheel="$cache/ansible-$pin-py3-none-any.whl"
if [ ! -f "$wheel" ]; then
  log "downloading ansible $pin (wheel, no dependencies) to $cache"
  "$py" -m pip download -q --no-deps --only-binary=:all: -d "$cache" "ansible==$pin" >&2
fi

log "extracting community.docker, community.library_inventory_filtering_v1 and ansible.posix from ansible $pin"
tmp=$(mktemp -d "$repo/molecule/.collections.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" - "$wheel" "$tmp" <<'PY'
import sys
import zipfile
from pathlib import Path

wheel, out = sys.argv[1], Path(sys.argv[2])
wanted = tuple(f"ansible_collections/{name}/" for name in (
    "community/docker", "community/library_inventory_filtering_v1", "ansible/posix"))
with zipfile.ZipFile(wheel) as archive:
    members = [name for name in archive.namelist() if name.startswith(wanted)]
    if not any(name.endswith("docker/MANIFEST.json") for name in members):
        sys.exit(f"community.docker not found in {wheel}")
    archive.extractall(out, members)
PY
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
touch "$stamp"
printf '%s\n' "$dest"
