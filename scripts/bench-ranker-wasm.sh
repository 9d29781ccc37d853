#!/usr/bin/env bash
# The ranker in tract-wasm vs onnxruntime-web (a benchmark, not a test; not run by CI): load
# time, 500-candidate batch time, score agreement and wasm sizes for the fixture rankers in
# tests/data/ranker/. Installs the npm dev dependencies (onnxruntime-web) when they are missing
# or older than package-lock.json, builds pkg/ with scripts/build-wasm.sh when pkg/node is
# missing (a release wasm build, several minutes; an existing pkg/ is used as it is, so rebuild
# it yourself after changing the Rust code), then runs bench/ranker-wasm.mjs with the
# arguments given:
#   bash scripts/bench-ranker-wasm.sh [--runs N] [--warmup N] [--warmup-ms N] [--batch N] [--loads N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if [ ! -f node_modules/onnxruntime-web/package.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci (dev dependencies: onnxruntime-web)"
  npm ci --no-audit --no-fund
fi

if [ ! -f pkg/node/edgerec.js ] || [ ! -f pkg/web/edgerec_bg.wasm ]; then
  step "pkg/ is missing: scripts/build-wasm.sh"
  bash scripts/build-wasm.sh
fi

step "node bench/ranker-wasm.mjs $*"
exec node bench/ranker-wasm.mjs "$@"
