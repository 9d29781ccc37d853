#!/usr/bin/env bash
# Builds the plain-ABI module for native TV apps as wasm-pack.toml's [plain-abi] says: the
# edgerec-tv crate for wasm32 without SIMD (in a target directory of its own, with getrandom's
# "unsupported" backend), then the project's wasm-opt; checks it validates without SIMD, imports
# nothing and fits its gzip budget. Writes dist/tv/edgerec_tv.wasm and its C header beside it.
# (`edgerec-wasm-tools tv-parity` then runs it in wasmi against the native rows; scripts/test.sh.)
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/env.sh
target_dir="${CARGO_TARGET_DIR:-target}"
wasm_opt="node_modules/.bin/wasm-opt"
die() { echo "build-tv: $*" >&2; exit 1; }
[ -x "$wasm_opt" ] || die "$wasm_opt is missing: run 'npm ci' first"

config=$(python3 scripts/wasm-config.py) || die "wasm-pack.toml could not be read"
eval "$config"

tv_dir="$target_dir/$tv_target_dir"
CARGO_TARGET_DIR="$tv_dir" CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$tv_rustflags" \
  cargo build -p "$tv_crate" --profile "$profile" --target wasm32-unknown-unknown
input="$tv_dir/wasm32-unknown-unknown/$profile/${tv_crate//-/_}.wasm"
[ -f "$input" ] || die "cargo produced no $input"

mkdir -p "$(dirname "$tv_out")"
"$wasm_opt" "${wasm_opt_args[@]}" "${features[@]}" "${baseline_opt[@]}" "$input" -o "$tv_out"
cp "crates/$tv_crate/edgerec_tv.h" "$(dirname "$tv_out")/"
# Validated against an explicit feature set without SIMD (not the module's own claim), and
# instantiated with no imports, by the test runner's host.
cargo run --quiet -p edgerec-wasm-tools -- check-baseline "$input" "$tv_out"
node scripts/wasm-sizes.mjs "$budgets" "$tv_out"
