#!/usr/bin/env bash
# Builds the npm package's WebAssembly: the edgerec crate for wasm32 twice — with WebAssembly
# SIMD and without (the baseline, for engines that lack it: older TV browsers) — then
# wasm-bindgen for the three targets the package ships, then wasm-opt -Oz on each module.
#
#   pkg/node/     --target nodejs   (CommonJS; the package's "node" export)
#   pkg/bundler/  --target bundler  (ES module importing the .wasm; "browser" and "default")
#   pkg/web/      --target web      (ES module with an async init(); the "./web" export, the demo)
#
# pkg/node and pkg/web hold both builds (edgerec_bg.wasm, edgerec_baseline_bg.wasm) and load the
# one the engine can run (scripts/patch-glue.mjs); pkg/bundler holds the SIMD build only (a
# bundler's static .wasm import cannot choose at run time: engines without SIMD use edgerec/web).
# Fails if a module grows past its gzip budget (scripts/wasm-budget.json).
#
# Run from anywhere; needs `npm ci` (for binaryen's wasm-opt) and the wasm-bindgen CLI at the
# exact version of the wasm-bindgen crate (scripts/setup.sh installs both).
# Respects CARGO_TARGET_DIR; unset, it is the one scripts/env.sh gives every project script.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/env.sh
target_dir="${CARGO_TARGET_DIR:-target}"
wasm_opt="node_modules/.bin/wasm-opt"

die() { echo "build-wasm: $*" >&2; exit 1; }

[ -x "$wasm_opt" ] || die "$wasm_opt is missing: run 'npm ci' first"
command -v wasm-bindgen >/dev/null || die "wasm-bindgen is not on PATH: run scripts/setup.sh"

# The CLI must match the crate exactly, or the generated glue does not fit the module.
crate_version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml)
cli_version=$(wasm-bindgen --version | awk '{print $2}')
[ -z "$crate_version" ] || [ "$crate_version" = "$cli_version" ] ||
  die "wasm-bindgen CLI $cli_version does not match the crate's =$crate_version"

# WebAssembly SIMD (Chrome 91, Firefox 89, Safari 16.4, node 16.4 and later): the int8 scan's
# simd128 kernel (src/quant.rs) and tract's vectorised kernels. Only the wasm32 target gets the
# flag, so native builds sharing the target directory are untouched.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128" \
  cargo build -p edgerec --release --target wasm32-unknown-unknown
input="$target_dir/wasm32-unknown-unknown/release/edgerec.wasm"
[ -f "$input" ] || die "cargo produced no $input"
# The baseline: the same code without +simd128, in a target directory of its own (a change of
# RUSTFLAGS would otherwise rebuild each flavour over the other on every run).
baseline_dir="$target_dir/wasm-baseline"
CARGO_TARGET_DIR="$baseline_dir" cargo build -p edgerec --release --target wasm32-unknown-unknown
baseline_input="$baseline_dir/wasm32-unknown-unknown/release/edgerec.wasm"
[ -f "$baseline_input" ] || die "cargo produced no $baseline_input"

# What Rust 1.95 enables by default for wasm32-unknown-unknown. binaryen would also read the
# module's target_features section; the flags make the expectation explicit. A feature the
# crate turns on beyond these (e.g. +simd128) still comes through that section.
features=(
  --enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext --enable-mutable-globals
  --enable-nontrapping-float-to-int --enable-reference-types --enable-call-indirect-overlong
  --enable-multivalue
)

rm -rf pkg
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
optimised=""
for target in nodejs bundler web; do
  dir="pkg/${target/nodejs/node}"
  wasm-bindgen --target "$target" --out-dir "$dir" --out-name edgerec "$input"
  # The three targets differ in their JS glue; wasm-bindgen 0.2.130 writes the same module for
  # each. Optimise it once (the slowest step of the build) and reuse it while that holds.
  if [ -n "$optimised" ] && cmp -s "$dir/edgerec_bg.wasm" "$raw/edgerec_bg.wasm"; then
    cp "$optimised" "$dir/edgerec_bg.wasm"
    continue
  fi
  cp "$dir/edgerec_bg.wasm" "$raw/edgerec_bg.wasm"
  # npm's binaryen works on wasm-bindgen's output (Debian's wasm-opt 108 breaks it).
  "$wasm_opt" -Oz "${features[@]}" --strip-debug --strip-producers \
    "$dir/edgerec_bg.wasm" -o "$dir/edgerec_bg.wasm"
  optimised="$dir/edgerec_bg.wasm"
done

# The baseline module, with the same glue: wasm-bindgen must write exactly the JS the SIMD
# build got (same exports and imports), so one glue drives either module.
mkdir -p "$raw/baseline"
for target in nodejs web; do
  dir="pkg/${target/nodejs/node}"
  wasm-bindgen --target "$target" --out-dir "$raw/baseline/$target" --out-name edgerec "$baseline_input"
  for f in edgerec.js edgerec.d.ts; do
    cmp -s "$dir/$f" "$raw/baseline/$target/$f" ||
      die "the baseline build's $target glue ($f) differs from the SIMD build's"
  done
done
cmp -s "$raw/baseline/nodejs/edgerec_bg.wasm" "$raw/baseline/web/edgerec_bg.wasm" ||
  die "wasm-bindgen wrote different baseline modules for nodejs and web"
# --disable-simd: validation fails if a SIMD instruction reached the baseline.
"$wasm_opt" -Oz "${features[@]}" --disable-simd --strip-debug --strip-producers \
  "$raw/baseline/nodejs/edgerec_bg.wasm" -o pkg/node/edgerec_baseline_bg.wasm
cp pkg/node/edgerec_baseline_bg.wasm pkg/web/edgerec_baseline_bg.wasm

# The glue's own argument check throws the package's coded errors (invalid_argument).
node scripts/patch-glue.mjs pkg/node/edgerec.js pkg/web/edgerec.js pkg/bundler/edgerec_bg.js

# The package root is "type": "module"; the nodejs target is CommonJS, so say so beside it.
# Bundlers and node read the nearest package.json for the module format.
echo '{ "type": "commonjs" }' > pkg/node/package.json
for dir in pkg/bundler pkg/web; do echo '{ "type": "module" }' > "$dir/package.json"; done

# The optimised modules must still instantiate (wasm-opt run after wasm-bindgen has broken
# modules before): load each build the way its users will.
for flavour in simd baseline; do
  EDGEREC_WASM=$flavour node -e 'const { Recommender, wasmFlavour } = require("./pkg/node/edgerec.js");
    if (typeof Recommender !== "function") throw new Error("pkg/node: no Recommender export");
    if (wasmFlavour !== process.env.EDGEREC_WASM) throw new Error(`pkg/node loaded ${wasmFlavour}`);'
done
node --input-type=module -e '
  import { readFile } from "node:fs/promises";
  const web = await import("./pkg/web/edgerec.js");
  await web.default({ module_or_path: await readFile("pkg/web/edgerec_bg.wasm") });
  if (typeof web.Recommender !== "function") throw new Error("pkg/web: no Recommender export");'
node --experimental-wasm-modules --no-warnings --input-type=module -e '
  const m = await import("./pkg/bundler/edgerec.js");
  if (typeof m.Recommender !== "function") throw new Error("pkg/bundler: no Recommender export");'

# Sizes (raw, gzip -9, brotli -q 11) against the budget.
node scripts/wasm-sizes.mjs scripts/wasm-budget.json pkg/node/edgerec_bg.wasm pkg/node/edgerec_baseline_bg.wasm
