#!/usr/bin/env bash
# The main job on a fresh machine: set up, train on MovieLens-100K, build the bundle and the
# wasm, print a few top-10s, then serve the demo page on localhost (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
bash scripts/artifacts.sh --print
step "wasm build"
bash scripts/build-wasm.sh
step "demo page"
exec node scripts/serve.mjs --port "${PORT:-8080}" --host "${HOST:-127.0.0.1}" --models "$EDGEREC_ARTIFACTS"
