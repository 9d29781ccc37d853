#!/usr/bin/env bash
# Fails if the wasm build of the edgerec crate depends on a native-only crate.
set -euo pipefail
cd "$(dirname "$0")/.."
# (anyhow is allowed: tract's error type is built on it; the core's own errors are thiserror.)
native_only='^(tokio|axum|hyper|reqwest|datafusion[a-z-]*|ballista[a-z-]*|candle-core|candle-nn|rusqlite|arrow[a-z-]*|parquet|clap|zip|faer|edgerec-cli) '
tree=$(cargo tree -p edgerec --target wasm32-unknown-unknown -e normal --prefix none)
if bad=$(grep -E "$native_only" <<<"$tree" | sort -u) && [ -n "$bad" ]; then
  echo "the wasm build of edgerec pulls native-only crates:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "wasm dependency tree: $(sort -u <<<"$tree" | wc -l) crates, none native-only"
