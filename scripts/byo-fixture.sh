#!/usr/bin/env bash
# Regenerates the bring-your-own-ranker fixture (tests/data/ranker/byo/): scikit-learn models
# converted to ONNX by skl2onnx, and scikit-learn's own probabilities on the rows of
# tests/data/ranker/inputs.json, which tests/ranker_byo.rs compares with the core's tract runtime.
# Installs tests/data/ranker/byo/requirements.txt into its own venv (idempotent; reinstalls when
# the file changes), then runs make_byo.py. The outputs are committed: tests never need Python.
#   bash scripts/byo-fixture.sh
# EDGEREC_BYO_VENV changes where the venv lives (default ~/.cache/edgerec/venv-byo); PYTHON which
# interpreter creates it (default python3; the pins have CPython 3.11 wheels).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/env.sh"

venv="${EDGEREC_BYO_VENV:-$HOME/.cache/edgerec/venv-byo}"
requirements="$root/tests/data/ranker/byo/requirements.txt"
stamp="$venv/.edgerec-requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
  step "venv for the BYO ranker fixture: $venv"
  mkdir -p "$(dirname "$venv")"
  "${PYTHON:-python3}" -m venv "$venv" || {
    echo "byo-fixture: could not create a venv (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  step "pip install -r tests/data/ranker/byo/requirements.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r "$requirements"
  echo "$want" > "$stamp"
fi

step "tests/data/ranker/byo/make_byo.py"
# A fixed hash seed: skl2onnx collects opset imports in a set, whose order (and so the .onnx
# bytes) otherwise changes from run to run.
PYTHONHASHSEED=0 exec "$venv/bin/python" "$root/tests/data/ranker/byo/make_byo.py"
