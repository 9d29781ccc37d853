#!/usr/bin/env bash
# The main job on a fresh machine: set up, train on MovieLens-100K, build the bundle and the
# wasm, print a few top-10s, publish the bundle to a local release store, serve it and the demo
# page on localhost with `edgerec serve`, and sync a client from it (Ctrl-C stops the server).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
bash scripts/artifacts.sh --print
step "wasm build"
bash scripts/build-wasm.sh
step "release: publish the bundle, serve it and the demo page, sync a client"
key="$EDGEREC_ARTIFACTS/keys/release"
[ -f "$key.key" ] || "$EDGEREC_BIN" keys generate --out "$key" >/dev/null
"$EDGEREC_BIN" publish --bundle "$EDGEREC_ARTIFACTS/bundle.edgerec" --key "$key.key" \
  --store "$EDGEREC_ARTIFACTS/store" >/dev/null
host="${HOST:-127.0.0.1}"
port="${PORT:-8080}"
"$EDGEREC_BIN" serve --store "$EDGEREC_ARTIFACTS/store" --www www --pkg pkg/web \
  --models "$EDGEREC_ARTIFACTS" --host "$host" --port "$port" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do
  curl -fsS "http://$host:$port/v1/health" >/dev/null 2>&1 && break
  sleep 0.2
done
node scripts/sync-client.mjs --url "http://$host:$port" --public-key "$(cat "$key.pub")" \
  --store "$EDGEREC_ARTIFACTS/client"
echo "demo page: http://$host:$port/ (Ctrl-C stops the server)"
wait $server
