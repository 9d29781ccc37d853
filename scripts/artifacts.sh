#!/usr/bin/env bash
# The main pipeline on MovieLens-100K: fetch → import → train → bundle → top-10s.
# Writes $EDGEREC_ARTIFACTS/{model/,bundle.edgerec,users.txt,recs.tsv,requests.jsonl,
# recs-blend.tsv,rank/,bundle-ranked.edgerec,device/}; users.txt, recs.tsv and requests.jsonl are the
# parity fixture the node and browser tests replay (the skeleton's row); recs-blend.tsv is the
# candidate sources' blend; bundle-ranked.edgerec is the default bundle plus a ranker trained
# on the blend's candidates (rank/).
# Pass --print to show rows.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
print=()
[ "${1:-}" = "--print" ] && print=(--print 3)

step "build the trainer CLI"
# Same targets and features as `cargo test --workspace`, so test.sh reuses its build.
cargo build --workspace --all-targets
bin="$EDGEREC_BIN"
raw="$EDGEREC_DATA/ml-100k"
tables="$EDGEREC_DATA/tables"
out="$EDGEREC_ARTIFACTS"

step "fetch and import MovieLens-100K"
"$bin" data fetch movielens-100k --out "$raw"
"$bin" data import movielens-100k --src "$raw" --out "$tables"
"$bin" data import movielens-100k --src "$raw" --out "$EDGEREC_DATA/world" --to world

step "train"
"$bin" train --data "$tables" --world "$EDGEREC_DATA/world" --out "$out/model" --seed 42

step "bundle"
# --world adds the media table (MDIA) and the feature contract the device's ranking stage and
# maturity filter read; --int8 ships the item vectors as int8 with per-row scales.
"$bin" bundle build --model "$out/model" --world "$EDGEREC_DATA/world" --int8 \
  --out "$out/bundle.edgerec"

step "ranker on the blend's candidates, and a second bundle that carries it"
# MovieLens has no negatives for `rank train`: `rank train-candidates` trains the rankers the
# way `edgerec eval`'s second stage does (the sources refitted before the world's last 21 days
# propose the candidates; the ones not watched in those days are the negatives); about 20 s.
# The evaluation shows the rankers do not lift the blend on MovieLens (models/README.md), so
# the default bundle.edgerec stays without one; bundle-ranked.edgerec carries the trees, with
# the world's media table (--world: MDIA) the device needs to compute their features.
"$bin" rank train-candidates --world "$EDGEREC_DATA/world" --out "$out/rank" --seed 42
# The device scores the trees with the core's own tree-ensemble engine (src/ranker/trees.rs,
# checked against tract at load): about 1.4 ms for 500 candidates natively.
"$bin" bundle build --model "$out/model" --features "$out/rank/features.json" \
  --world "$EDGEREC_DATA/world" --int8 --ranker "$out/rank/ranker-gbdt.onnx" \
  --out "$out/bundle-ranked.edgerec"

step "top-10 with the device's code"
# One unknown (cold) user with onboarding picks and the first 40 users; the same requests
# feed the JS parity tests.
{ echo user_id; echo 100000; seq 1 40; } > "$out/users.txt"
"$bin" recommend --bundle "$out/bundle.edgerec" --data "$tables" --users "$out/users.txt" \
  --k 10 --device tv --time 893286638 --utc-offset-minutes -300 \
  --cold-user-genres "Sci-Fi,Comedy" \
  --out "$out/recs.tsv" --requests-out "$out/requests.jsonl" "${print[@]}"

step "top-10 of the candidate sources' blend"
"$bin" recommend --bundle "$out/bundle.edgerec" --data "$tables" --users "$out/users.txt" \
  --k 10 --device tv --time 893286638 --utc-offset-minutes -300 \
  --cold-user-genres "Sci-Fi,Comedy" --source blend \
  --out "$out/recs-blend.tsv" "${print[@]}"

step "the device pipeline's top-10 (recommendRow's parity fixture)"
# Each user's local state (plays, profile, onboarding picks for the cold user, and for every
# third user the 3 most popular titles shown 3 times without a play) goes through the whole
# device pipeline of the ranked bundle natively; the node and browser tests replay the same
# states in wasm and must get the same rows.
mkdir -p "$out/device"
cp "$out/bundle-ranked.edgerec" "$out/device/bundle.edgerec"
"$bin" recommend --bundle "$out/device/bundle.edgerec" --data "$tables" --users "$out/users.txt" \
  --k 10 --device tv --time 893286638 --utc-offset-minutes -300 \
  --cold-user-genres "Sci-Fi,Comedy" --source device --country US --language en \
  --shown-popular 3 --out "$out/device/recs.tsv" --requests-out "$out/device/requests.jsonl" \
  "${print[@]}"
