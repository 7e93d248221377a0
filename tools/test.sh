#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it: lint, sanity, build, pytest (real PostgreSQL),
# Molecule (real PostgreSQL containers). Each stage prints a header; the first failure stops the run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash tools/bootstrap.sh
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$repo/.collections"

stage() { printf '\n=== %s ===\n' "$*"; }

stage "ruff"
ruff check .

stage "ansible-lint (production profile)"
ansible-lint --profile production --offline

stage "ansible-test sanity"
bash tools/sanity.sh

stage "collection build, install and ansible-doc"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
rm -rf build && ansible-galaxy collection build --output-path build . >/dev/null
# --force: the development link in .collections already provides this version, and install would skip it.
ansible-galaxy collection install --offline --force -p "$build/installed" build/yuantus-relmigrate-*.tar.gz >/dev/null
for plugin in relationship_items relationship_items_info relationship_items_ledger libpq_command; do
  ANSIBLE_COLLECTIONS_PATH="$build/installed" ansible-doc "yuantus.relmigrate.$plugin" | grep -q "$build/installed"
done
ANSIBLE_COLLECTIONS_PATH="$build/installed" ansible-doc -t inventory yuantus.relmigrate.scopes | grep -q "$build/installed"
echo "built $(basename build/yuantus-relmigrate-*.tar.gz) ($(du -k build/yuantus-relmigrate-*.tar.gz | cut -f1) KiB), installed, ansible-doc renders"

stage "ansible-builder create (execution environment build context)"
if [ -f execution-environment.yml ]; then
  ansible-builder create -f execution-environment.yml -c "$build/ee-context" >/dev/null
  test -f "$build/ee-context/Containerfile" -o -f "$build/ee-context/Dockerfile"
  echo "build context: container file and $(find "$build/ee-context" -type f | wc -l) files"
fi

stage "pytest (real PostgreSQL)"
pytest -p no:cacheprovider "$@"

if [ -d molecule/default ] && [ "${RELMIGRATE_SKIP_MOLECULE:-0}" != 1 ]; then
  stage "molecule (PostgreSQL containers)"
  bash molecule/scripts/run_all.sh
fi
