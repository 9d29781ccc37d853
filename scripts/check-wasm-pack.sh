#!/usr/bin/env bash
# `wasm-pack build` on this tree (what a Rust/wasm user types) makes a working package, and the
# same one scripts/build-wasm.sh makes: for the web target, wasm-pack's module and glue equal,
# byte for byte, what the build script gets from the baseline flavour (wasm-pack passes no
# RUSTFLAGS) before its own wasm-opt and glue patch. wasm-pack runs without downloading
# anything: `--mode no-install` uses the wasm-bindgen CLI on PATH, and Cargo.toml's
# [package.metadata.wasm-pack] (mirroring wasm-pack.toml) turns its wasm-opt off.
#
# Needs scripts/setup.sh (wasm-pack, wasm-bindgen) and scripts/build-wasm.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
target_dir="${CARGO_TARGET_DIR:-target}"

die() { echo "check-wasm-pack: $*" >&2; exit 1; }
command -v wasm-pack >/dev/null || die "wasm-pack is not on PATH: run scripts/setup.sh"
eval "$(python3 scripts/wasm-config.py)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# In the baseline's target directory: the same flags, so cargo finds the build done.
CARGO_TARGET_DIR="$target_dir/$baseline_target_dir" \
  wasm-pack build --mode no-install --"$profile" --target web --out-dir "$out/wasm-pack" --out-name edgerec .
wasm-bindgen --target web --out-dir "$out/build" --out-name edgerec \
  "$target_dir/$baseline_target_dir/wasm32-unknown-unknown/$profile/$crate.wasm"
for f in edgerec_bg.wasm edgerec.js edgerec.d.ts; do
  cmp -s "$out/wasm-pack/$f" "$out/build/$f" || die "wasm-pack's $f differs from the build script's"
done

# wasm-pack's package loads a bundle and recommends.
node --input-type=module -e '
  import { readFile } from "node:fs/promises";
  const pkg = process.argv[1];
  const m = await import(`${pkg}/edgerec.js`);
  await m.default({ module_or_path: await readFile(`${pkg}/edgerec_bg.wasm`) });
  const rec = new m.Recommender(await readFile("tests/data/tiny-v1.edgerec"));
  const row = rec.recommendRow(new m.UserState(), { context: { device: "tv", timestamp: 1700000000 }, k: 3 });
  if (row.items.length !== 3) throw new Error(`wasm-pack package: ${row.items.length} titles`);
  console.log(`wasm-pack build: a working package, byte for byte the baseline of build-wasm.sh (${rec.itemCount} titles, row of ${row.items.length})`);
' "$out/wasm-pack"
