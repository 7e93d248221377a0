#!/usr/bin/env bash
# Runs `ansible-test sanity` (the tests that need no containers) on a copy of the tracked files placed under
# ansible_collections/yuantus/relmigrate, as ansible-test requires.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ansible-test bootstraps pip in its venvs with a get-pip script from a host this network cannot reach. This
# stand-in does the same job with the pip already in our venv; pip then installs the pinned pip from PyPI.
pip_version=$("$venv/bin/python" - <<'PY'
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -s "$cache" ] || ! grep -q 'yuantus.relmigrate stand-in v2' "$cache"; then
  mkdir -p "$(dirname "$cache")"
  mkdir -p "$HOME/.ansible/test/cache/pip-bootstrap"
  rm -rf "$HOME/.ansible/test/cache/pip-bootstrap/pip"
  cp -r "$("$venv/bin/python" -c 'import os, pip; print(os.path.dirname(pip.__file__))')" \
    "$HOME/.ansible/test/cache/pip-bootstrap/pip"
  cat > "$cache" <<PY
# yuantus.relmigrate stand-in v2 for get-pip.py: run pip from a local copy to install the requested pip.
import runpy, sys
sys.path.insert(0, "$HOME/.ansible/test/cache/pip-bootstrap")
# get-pip's own flags (--no-setuptools, --no-wheel) mean "install nothing else": plain pip install already does that.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", "--upgrade", "--force-reinstall"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
fi

dest="$work/ansible_collections/yuantus/relmigrate"
mkdir -p "$dest"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard --deduplicate | while IFS= read -r -d '' file; do
  if [ -e "$file" ]; then cp --parents -P "$file" "$dest"; fi
done)
cd "$dest"
git init -q && git add -A
"$venv/bin/ansible-test" sanity --python "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --requirements --color no "$@"
