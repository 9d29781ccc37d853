#!/usr/bin/env bash
# Runs every test: fast checks first, then native tests, then the MovieLens pipeline, the wasm
# build and the JS tests (node and headless Chromium) that compare against the native top-10s.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh

step "format"
cargo fmt --all --check

step "clippy (native workspace, all targets; the core for wasm32)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p edgerec --target wasm32-unknown-unknown -- -D warnings
# The plain-ABI module for wasm32, as scripts/build-tv.sh builds it (its own target directory).
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-tv" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$(python3 scripts/wasm-config.py | sed -n "s/^tv_rustflags=//p" | xargs)" \
  cargo clippy -p edgerec-tv --target wasm32-unknown-unknown -- -D warnings

step "wasm dependency tree"
bash scripts/check-wasm-deps.sh

step "cargo tests (unit, integration, doc)"
# Two invocations: in one combined `cargo test --workspace` run the core's doctests were
# linked against its build without the `test-support` feature (which its self dev-dependency
# turns on) and could not see `edgerec::test_support`; run apart, they get the test build.
cargo test --workspace --lib --bins --tests --examples
cargo test --workspace --doc

bash scripts/artifacts.sh

# The mutation suite's cases for its run in wasm (tests/js/mutations.test.mjs); natively it is
# tests/mutations.rs, run above.
cargo run --quiet -p edgerec --example mutations -- "$EDGEREC_ARTIFACTS/mutations"

step "memory of the MovieLens bundles: measured peaks within the loader's estimate"
# Fails if loading a bundle and serving requests of the largest size (a counting allocator
# measures it) takes more than the estimate the loader checks against its memory budget.
cargo run --quiet -p edgerec --example memory -- \
  "$EDGEREC_ARTIFACTS/bundle.edgerec" "$EDGEREC_ARTIFACTS/bundle-ranked.edgerec"

step "the synthetic 20k-title bundle and user states (examples/device_bench.rs --bundle-only)"
# What the worker test in headless Chromium loads and replays: 20,000 titles, the native rows.
cargo run --quiet -p edgerec --example device_bench -- "$EDGEREC_ARTIFACTS/device-20k" --bundle-only

# The offline evaluation of the candidate sources (MovieLens-100K and a synthetic world).
bash scripts/eval.sh

step "wasm build (node, bundler, web; SIMD and baseline; size budget)"
bash scripts/build-wasm.sh

step "wasm-pack build: the same package"
bash scripts/check-wasm-pack.sh

step "plain-ABI TV module: build, then hostile input and the parity fixtures in wasmi"
bash scripts/build-tv.sh
cargo run --quiet -p edgerec-wasm-tools -- tv-parity dist/tv/edgerec_tv.wasm \
  "$EDGEREC_ARTIFACTS" "$EDGEREC_ARTIFACTS/device"

step "JS tests: node package, headless Chromium, fresh Vite and webpack apps"
node --test tests/js/

step "JS parity tests on the baseline build (no SIMD), in node"
# The headless-Chromium parity tests above ran both builds; node takes the SIMD build unless
# told otherwise.
EDGEREC_WASM=baseline node --test tests/js/node.test.mjs tests/js/mutations.test.mjs
