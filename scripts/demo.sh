#!/usr/bin/env bash
# The main job on a fresh machine: set up, train on MovieLens-100K, build the bundle and the
# wasm, print a few top-10s, publish the bundle to a local release store, serve it and the demo
# page on localhost with `edgerec serve`, and sync a client from it (Ctrl-C stops the server).
# The page's address carries the release's trust root (?key=…): opened with it, the page
# installs and updates its model through the signed sync client (see www/app.js).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
bash scripts/artifacts.sh --print
step "wasm build"
bash scripts/build-wasm.sh
step "release: publish the bundle, serve it and the demo page, sync a client"
# The signing key stays out of every directory the server exposes (--models serves
# $EDGEREC_ARTIFACTS). A key an earlier demo left in artifacts/keys/ moves here: the same
# trust root, so installed clients keep verifying.
key="$EDGEREC_DATA/keys/release"
mkdir -p "$(dirname "$key")"
if [ ! -f "$key.key" ] && [ -f "$EDGEREC_ARTIFACTS/keys/release.key" ]; then
  mv "$EDGEREC_ARTIFACTS/keys/release.key" "$key.key"
  mv "$EDGEREC_ARTIFACTS/keys/release.pub" "$key.pub"
fi
[ -f "$key.key" ] || "$EDGEREC_BIN" keys generate --out "$key" >/dev/null
"$EDGEREC_BIN" publish --bundle "$EDGEREC_ARTIFACTS/bundle.edgerec" --key "$key.key" \
  --store "$EDGEREC_ARTIFACTS/store" >/dev/null
host="${HOST:-127.0.0.1}"
port="${PORT:-8080}"
# /js/ (the package's sync client) beside /pkg/web/ (its web build), as in the npm package.
"$EDGEREC_BIN" serve --store "$EDGEREC_ARTIFACTS/store" --www www --pkg pkg/web --js js \
  --models "$EDGEREC_ARTIFACTS" --host "$host" --port "$port" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do
  curl -fsS "http://$host:$port/v1/health" >/dev/null 2>&1 && break
  sleep 0.2
done
node scripts/sync-client.mjs --url "http://$host:$port" --public-key "$(cat "$key.pub")" \
  --store "$EDGEREC_ARTIFACTS/client"
# The native client (edgerec_release::sync) syncs the same release.
"$EDGEREC_BIN" sync --url "http://$host:$port" --trust "$key.pub" \
  --dir "$EDGEREC_ARTIFACTS/native-client" | node -e '
    const { outcome, status } = JSON.parse(require("fs").readFileSync(0, "utf8"));
    console.log(`native client: version ${status.version} (${status.label}), ` +
      `${outcome.updated ? "installed" : "up to date"}, ${outcome.downloadedBytes} bytes downloaded`);'
echo "demo page: http://$host:$port/?key=$(cat "$key.pub") (Ctrl-C stops the server)"
echo "  (without ?key= the page loads /models/bundle.edgerec directly, without sync)"
wait $server
