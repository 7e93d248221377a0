#!/usr/bin/env bash
# Every Molecule scenario, as tools/test.sh and CI run them:
#   bash molecule/scripts/run_all.sh [SCENARIO...]      # default: all scenarios, default first
# Starts a private Docker engine when none answers (and stops it at the end, also on failure: only the one it
# started), builds the PostgreSQL image once, takes community.docker from the pinned ansible wheel, picks free
# loopback ports, runs `molecule test` per scenario and prints each scenario's wall time.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
scripts="$repo/molecule/scripts"

log() { printf 'run_all.sh: %s\n' "$*" >&2; }

started_engine=0
cleanup() {
  local rc=$?
  if [ "$started_engine" = 1 ]; then
    # A scenario that failed may have left its containers; they go with the engine's data only if removed.
    docker ps -aq --filter label=owner=molecule | xargs -r docker rm -f >/dev/null 2>&1 || true
    bash "$scripts/dockerd.sh" stop || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! docker info >/dev/null 2>&1; then
  bash "$scripts/dockerd.sh" start
  started_engine=1
fi

RELMIGRATE_PG_IMAGE=$(bash "$scripts/build_pg_image.sh")
# Fresh ports and password for this run (env.sh keeps them for later manual steps).
rm -f "$repo/molecule/.cache/env"
export RELMIGRATE_PG_IMAGE
# shellcheck source=molecule/scripts/env.sh
. "$scripts/env.sh"

if [ "$#" -gt 0 ]; then
  scenarios=("$@")
else
  scenarios=(default)
  for dir in molecule/*/; do
    name=$(basename "$dir")
    [ -f "$dir/molecule.yml" ] && [ "$name" != default ] && scenarios+=("$name")
  done
fi

declare -A took
failed=()
total_start=$(date +%s)
for scenario in "${scenarios[@]}"; do
  log "scenario $scenario"
  start=$(date +%s)
  if molecule test -s "$scenario"; then status=passed; else status=FAILED; failed+=("$scenario"); fi
  took[$scenario]="$(($(date +%s) - start))s $status"
  log "scenario $scenario: ${took[$scenario]}"
done

printf '\nMolecule scenarios (wall time):\n'
for scenario in "${scenarios[@]}"; do
  printf '  %-10s %s\n' "$scenario" "${took[$scenario]}"
done
printf '  %-10s %ss\n' total "$(($(date +%s) - total_start))"
passed=$((${#scenarios[@]} - ${#failed[@]}))
printf '%d passed, %d failed\n' "$passed" "${#failed[@]}"
[ "${#failed[@]}" -eq 0 ]
