#!/usr/bin/env bash
# The device pipeline benchmark (not a test; not run by CI): `recommend_row` natively
# (examples/device_bench.rs) and `recommendRow` in wasm (bench/device.mjs, pkg/node) on the same
# synthetic 20k-title bundle and 200 user states, per stage, side by side; the example also
# prints int8 vs f32 (bytes, rows, NDCG) and flat scan vs HNSW at 100k and 1M items.
#
#   bash scripts/bench-device.sh [--dev] [--no-1m] [--passes N]
#
#   --dev     run the example in the dev profile (opt-level 2 everywhere, debug assertions on)
#             instead of release (core opt-level 3, dependencies opt-level z, LTO: the settings
#             the wasm build uses, so the two columns differ only by target)
#   --no-1m   skip the 1M-item flat scans (they need about 1 GB and a minute)
#   --passes  timed passes of the wasm side (default: as many as the native side ran)
#
# Builds the example; builds pkg/ with scripts/build-wasm.sh (a release wasm build, several
# minutes) only when pkg/node is missing or predates recommendRow — an existing pkg/ is used as
# it is, so rebuild it yourself after changing the Rust code. Output files go to
# $EDGEREC_ARTIFACTS/bench-device (override with BENCH_DEVICE_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

profile=release
example_args=()
js_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) profile=dev ;;
    --no-1m) example_args+=(--no-1m) ;;
    --passes) js_args+=(--passes "$2"); shift ;;
    *) echo "bench-device: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
out="${BENCH_DEVICE_OUT:-$EDGEREC_ARTIFACTS/bench-device}"
mkdir -p "$out"

if [ "$profile" = release ]; then
  step "cargo build --release -p edgerec --example device_bench"
  cargo build --release -p edgerec --example device_bench
  bin="$CARGO_TARGET_DIR/release/examples/device_bench"
else
  step "cargo build -p edgerec --example device_bench"
  cargo build -p edgerec --example device_bench
  bin="$CARGO_TARGET_DIR/debug/examples/device_bench"
fi

if [ ! -f pkg/node/edgerec.js ] || [ ! -f pkg/web/edgerec_bg.wasm ] ||
  ! grep -q recommendRow pkg/node/edgerec.js; then
  step "pkg/node is missing or has no recommendRow: scripts/build-wasm.sh"
  bash scripts/build-wasm.sh
fi

step "native: device_bench $out ${example_args[*]}"
"$bin" "$out" "${example_args[@]}" | tee "$out/native.txt"

step "wasm: node bench/device.mjs $out ${js_args[*]}"
status=0
node bench/device.mjs "$out" "${js_args[@]}" | tee "$out/wasm.txt" || status=$?

step "summary (also in $out/native.txt and $out/wasm.txt)"
sed -n '/^## recommend_row, native/,/^bundle load/p' "$out/native.txt"
echo
sed -n '/^## recommendRow/,/^rows:/p' "$out/wasm.txt"
echo
sed -n '/^## int8 vs f32/,/^int8 scan/p' "$out/native.txt" | grep -v '^  what it means'
echo
sed -n '/^## flat scan vs HNSW/,$p' "$out/native.txt"
exit "$status"
