#!/usr/bin/env bash
# Installs everything edgerec's builds and tests need on a fresh machine, idempotently: the
# pinned Rust toolchain with the wasm32 target, wasm-bindgen-cli at exactly the crate's version,
# wasm-pack,
# npm dev dependencies (binaryen's wasm-opt, playwright-core, typescript) and Debian's Chromium.
# Only package registries are used (crates.io, npm, Debian, PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step "Rust toolchain (rust-toolchain.toml) and the wasm32 target"
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
rustup show active-toolchain

step "wasm-bindgen-cli"
want=$(sed -n 's/^wasm-bindgen = .*"=\([0-9.]*\)".*$/\1/p' Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  # No --locked: the registry lacks one pinned dependency of the CLI (TOOLCHAIN.md).
  env -u CARGO_TARGET_DIR cargo install wasm-bindgen-cli --version "$want"
fi
wasm-bindgen --version

step "wasm-pack"
# What a Rust/wasm user builds with: scripts/check-wasm-pack.sh proves `wasm-pack build` makes
# the package scripts/build-wasm.sh makes (with the wasm-bindgen above; it downloads nothing).
want=0.13.1
have=$(wasm-pack --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  env -u CARGO_TARGET_DIR cargo install wasm-pack --locked --version "$want"
fi
wasm-pack --version

step "npm dev dependencies"
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -x node_modules/.bin/tsc ] || [ ! -x node_modules/.bin/vite ] ||
  [ ! -x node_modules/.bin/webpack ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
node_modules/.bin/wasm-opt --version

step "Chromium (Debian) for the browser tests"
if [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
fi
/usr/bin/chromium --version 2>/dev/null
