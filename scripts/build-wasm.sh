#!/usr/bin/env bash
# Builds the npm package's WebAssembly as wasm-pack.toml (the wasm build's one configuration)
# says: the edgerec crate for wasm32 twice — with WebAssembly SIMD and without (the baseline,
# for engines that lack it) — then wasm-bindgen for each target the package ships, then the
# project's wasm-opt on each module.
#
#   pkg/node/     --target nodejs   (CommonJS; the package's "node" export)
#   pkg/bundler/  --target bundler  (its exports and types only: the entry becomes the web glue,
#                                    initialised by a top-level await; "browser" and "default")
#   pkg/web/      --target web      (ES module with an async init(); the "./web" export, the demo)
#
# pkg/web holds both builds (edgerec_bg.wasm, edgerec_baseline_bg.wasm), the package's one copy
# of each: the node and web glue load the one the engine can run, node's from ../web
# (scripts/patch-glue.mjs); pkg/bundler/edgerec.js is `import init from "../web/edgerec.js";
# await init();` and the same exports, so bundlers see a plain ES module and two
# `new URL('….wasm', import.meta.url)` assets, and engines without SIMD get the baseline there too.
# Fails if a module grows past its gzip budget (wasm-pack.toml).
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

# Everything below comes from wasm-pack.toml (and fails here if Cargo.toml's copy of what
# wasm-pack reads has drifted from it).
config=$(python3 scripts/wasm-config.py) || die "wasm-pack.toml could not be read"
eval "$config"

# The CLI must match the crate exactly, or the generated glue does not fit the module.
crate_version=$(sed -n 's/^wasm-bindgen = .*"=\([0-9.]*\)".*$/\1/p' Cargo.toml)
cli_version=$(wasm-bindgen --version | awk '{print $2}')
[ -z "$crate_version" ] || [ "$crate_version" = "$cli_version" ] ||
  die "wasm-bindgen CLI $cli_version does not match the crate's =$crate_version"

# The flavours' RUSTFLAGS go to the wasm32 target only, so native builds sharing the target
# directory are untouched; the baseline builds in a target directory of its own (a change of
# RUSTFLAGS would otherwise rebuild each flavour over the other on every run).
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$simd_rustflags" \
  cargo build -p "$crate" --profile "$profile" --target wasm32-unknown-unknown
input="$target_dir/wasm32-unknown-unknown/$profile/$crate.wasm"
[ -f "$input" ] || die "cargo produced no $input"
baseline_dir="$target_dir/$baseline_target_dir"
CARGO_TARGET_DIR="$baseline_dir" CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$baseline_rustflags" \
  cargo build -p "$crate" --profile "$profile" --target wasm32-unknown-unknown
baseline_input="$baseline_dir/wasm32-unknown-unknown/$profile/$crate.wasm"
[ -f "$baseline_input" ] || die "cargo produced no $baseline_input"

rm -rf pkg
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
optimised=""
for target in "${simd_targets[@]}"; do
  dir="${target_dirs[$target]}"
  wasm-bindgen --target "$target" --out-dir "$dir" --out-name edgerec "$input"
  [ "$simd_file" = edgerec_bg.wasm ] || mv "$dir/edgerec_bg.wasm" "$dir/$simd_file"
  # The targets differ in their JS glue; wasm-bindgen 0.2.130 writes the same module for each.
  # Optimise it once (the slowest step of the build) and reuse it while that holds.
  if [ -n "$optimised" ] && cmp -s "$dir/$simd_file" "$raw/simd.wasm"; then
    cp "$optimised" "$dir/$simd_file"
    continue
  fi
  cp "$dir/$simd_file" "$raw/simd.wasm"
  # npm's binaryen works on wasm-bindgen's output (Debian's wasm-opt 108 breaks it).
  "$wasm_opt" "${wasm_opt_args[@]}" "${features[@]}" "$dir/$simd_file" -o "$dir/$simd_file"
  optimised="$dir/$simd_file"
done

# The baseline module, with the same glue: wasm-bindgen must write exactly the JS the SIMD
# build got (same exports and imports), so one glue drives either module.
baseline_raw=""
for target in "${baseline_targets[@]}"; do
  dir="${target_dirs[$target]}"
  out="$raw/baseline/$target"
  wasm-bindgen --target "$target" --out-dir "$out" --out-name edgerec "$baseline_input"
  for f in edgerec.js edgerec.d.ts; do
    cmp -s "$dir/$f" "$out/$f" || die "the baseline build's $target glue ($f) differs from the SIMD build's"
  done
  if [ -z "$baseline_raw" ]; then
    baseline_raw="$out/edgerec_bg.wasm"
    "$wasm_opt" "${wasm_opt_args[@]}" "${features[@]}" "${baseline_opt[@]}" "$baseline_raw" -o "$raw/baseline.wasm"
  else
    cmp -s "$baseline_raw" "$out/edgerec_bg.wasm" || die "wasm-bindgen wrote different baseline modules per target"
  fi
  cp "$raw/baseline.wasm" "$dir/$baseline_file"
done
# wasm-opt validates with the features the module's target_features section claims; this
# validates against an explicit feature set without SIMD, whatever the module says.
cargo run --quiet -p edgerec-wasm-tools -- check-baseline "$baseline_input" "$raw/baseline.wasm"

# The glue's own argument check throws the package's coded errors (invalid_argument), and the
# node and web glue load the build the engine can run.
# Each module ships once, in the web directory (which `edgerec serve --pkg` and the demo serve
# whole): the node glue loads it from there, and the bundler entry is the web glue, initialised
# (its own glue and module declarations go: nothing imports them).
web_dir="${target_dirs[web]}"
shared=$(realpath -m --relative-to="${target_dirs[nodejs]}" "$web_dir")
[ "$shared" = "$(realpath -m --relative-to="${target_dirs[bundler]}" "$web_dir")" ] ||
  die "the node and bundler directories must be siblings (wasm-pack.toml [build] targets)"
node scripts/patch-glue.mjs "$shared" "${target_dirs[nodejs]}/edgerec.js" "$web_dir/edgerec.js" \
  "${target_dirs[bundler]}/edgerec.js"
rm "${target_dirs[bundler]}/edgerec_bg.js" "${target_dirs[bundler]}/edgerec_bg.wasm.d.ts"
for target in nodejs bundler; do
  rm -f "${target_dirs[$target]}/$simd_file" "${target_dirs[$target]}/$baseline_file"
done

# The package root is "type": "module"; the nodejs target is CommonJS, so say so beside it.
# Bundlers and node read the nearest package.json for the module format.
echo '{ "type": "commonjs" }' > "${target_dirs[nodejs]}/package.json"
for target in bundler web; do echo '{ "type": "module" }' > "${target_dirs[$target]}/package.json"; done

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
# The bundler entry fetches its module from the glue's default URL (node's fetch has no file:
# URLs, so this one reads the file); WebAssembly.validate answering false is an engine without SIMD.
for flavour in simd baseline; do
  EDGEREC_WASM=$flavour node --input-type=module -e '
    import { readFile } from "node:fs/promises";
    import { basename } from "node:path";
    const fetched = [];
    globalThis.fetch = async (url) => {
      fetched.push(basename(new URL(url).pathname));
      return new Response(await readFile(new URL(url)), { headers: { "content-type": "application/wasm" } });
    };
    const flavour = process.env.EDGEREC_WASM;
    if (flavour === "baseline") WebAssembly.validate = () => false;
    const m = await import("./pkg/bundler/edgerec.js");
    if (typeof m.Recommender !== "function") throw new Error("pkg/bundler: no Recommender export");
    const file = flavour === "simd" ? "edgerec_bg.wasm" : "edgerec_baseline_bg.wasm";
    if (m.wasmFlavour !== flavour || fetched.join() !== file) throw new Error(`pkg/bundler: ${m.wasmFlavour}, fetched ${fetched}`);'
done

# Sizes (raw, gzip -9, brotli -q 11) against the budget.
node scripts/wasm-sizes.mjs "$budgets" "$web_dir/$simd_file" "$web_dir/$baseline_file"
