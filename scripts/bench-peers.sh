#!/usr/bin/env bash
# Peer baselines (a benchmark, not a test): implicit's ALS and BPR, EASE and item-kNN on the splits that
# `edgerec eval` writes, so the Rust evaluator scores them with the same metric code. Installs
# bench/requirements.txt into its own venv (idempotent; reinstalls when the file changes), then
# runs bench/peers.py with the arguments given:
#   bash scripts/bench-peers.sh --splits DIR --out DIR [--only PROTOCOL]... [--method NAME]... [--threads N]
# (--threads: default 1, reproducible rows and steady timings; 0 = all cores).
# EDGEREC_VENV changes where the venv lives (default ~/.cache/edgerec/venv-peers); PYTHON which
# interpreter creates it (default python3; the pins have CPython 3.11 wheels).
# Relative paths in the arguments are taken from the directory this is run from.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/env.sh"

venv="${EDGEREC_VENV:-$HOME/.cache/edgerec/venv-peers}"
requirements="$root/bench/requirements.txt"
stamp="$venv/.edgerec-requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
  step "venv for the peer baselines: $venv"
  mkdir -p "$(dirname "$venv")"
  "${PYTHON:-python3}" -m venv "$venv" || {
    echo "bench-peers: could not create a venv (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  step "pip install -r bench/requirements.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r "$requirements"
  echo "$want" > "$stamp"
fi

step "bench/peers.py $*"
exec "$venv/bin/python" "$root/bench/peers.py" "$@"
