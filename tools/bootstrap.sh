#!/usr/bin/env bash
# Prepares a fresh machine for the demo and the tests: the Python venv (pinned), Debian's PostgreSQL server when
# no `postgres` binary is found, and the collection link that lets Ansible load yuantus.relmigrate from this tree.
# Idempotent: a second run only checks.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv"
py=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
stamp="$venv/.installed-$(sha256sum "$repo/requirements/constraints.txt" "$repo/requirements/requirements.in" | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  log="$venv/pip-install.log"
  echo "bootstrap: installing the pinned Python packages into .venv (log: .venv/pip-install.log)" >&2
  if ! { "$venv/bin/pip" install --upgrade pip \
         && "$venv/bin/pip" install -r "$repo/requirements/requirements.in" -c "$repo/requirements/constraints.txt"; \
       } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    exit 1
  fi
  touch "$stamp"
fi

pg_bin() {
  command -v postgres >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1
}
if ! pg_bin; then
  echo "bootstrap: installing Debian's PostgreSQL server" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends postgresql postgresql-client >/dev/null
fi

# Ansible finds collections under <path>/ansible_collections/<namespace>/<name>; the repo root is the collection.
link_dir="$repo/.collections/ansible_collections/yuantus"
mkdir -p "$link_dir"
ln -sfn "$repo" "$link_dir/relmigrate"
