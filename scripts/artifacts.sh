#!/usr/bin/env bash
# The main pipeline on MovieLens-100K: fetch → import (a canonical world) → train → bundle →
# rows from the device pipeline. Writes $EDGEREC_ARTIFACTS/{model/,bundle.edgerec,users.txt,
# recs.tsv,requests.jsonl,rank/,bundle-ranked.edgerec,device/}:
#   bundle.edgerec          the default bundle (int8 item vectors, media table, no ranker)
#   recs.tsv, requests.jsonl the default bundle's rows for users.txt and the requests that made
#                           them (each user's UserState bytes and recommendRow options): the
#                           parity fixture the node and browser tests replay in wasm
#   bundle-ranked.edgerec   the default bundle plus a ranker trained on the blend's candidates
#   device/                 the same fixture for the ranked bundle, with fatigue impressions
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
world="$EDGEREC_DATA/world"
out="$EDGEREC_ARTIFACTS"

step "fetch and import MovieLens-100K"
"$bin" data fetch movielens-100k --out "$raw"
"$bin" data import movielens-100k --src "$raw" --out "$world"

step "train"
"$bin" train --world "$world" --out "$out/model" --seed 42

step "bundle"
# --world adds the media table (MDIA) and the feature contract the device's ranking stage and
# maturity filter read; --int8 ships the item vectors as int8 with per-row scales.
"$bin" bundle build --model "$out/model" --world "$world" --int8 --out "$out/bundle.edgerec"

step "ranker on the blend's candidates, and a second bundle that carries it"
# MovieLens has no negatives for `rank train`: `rank train-candidates` trains the rankers the
# way `edgerec eval`'s second stage does (the sources refitted before the world's last 21 days
# propose the candidates; the ones not watched in those days are the negatives); about 20 s.
# This ranker (trained on the whole world, without the candidate family) is a fixture for
# the ranker's parity tests, not a bundle to ship: bundle-ranked.edgerec carries the trees
# with --ungated. The shipped bundle.edgerec carries a ranker only when `train` learned one
# from the device's own candidates that passed its gate on validation (see its report).
"$bin" rank train-candidates --world "$world" --out "$out/rank" --seed 42
# The device scores the trees with the core's own tree-ensemble engine (src/ranker/trees.rs,
# checked against tract at load): about 1.4 ms for 500 candidates natively.
"$bin" bundle build --model "$out/model" --features "$out/rank/features.json" \
  --world "$world" --int8 --ranker "$out/rank/ranker-gbdt.onnx" --ungated \
  --out "$out/bundle-ranked.edgerec"

step "rows from the device pipeline (recommendRow's parity fixtures)"
# One unknown (cold) user with onboarding picks and the first 40 users: each user's local state
# (plays, profile, onboarding picks for the cold user) goes through the device pipeline
# natively; the node and browser tests replay the same requests in wasm and must get the same
# rows.
{ echo user_id; echo 100000; seq 1 40; } > "$out/users.txt"
request=(--world "$world" --users "$out/users.txt" --k 10 --device tv --time 893286638
  --utc-offset-minutes -300 --cold-user-genres "Sci-Fi,Comedy")
"$bin" recommend --bundle "$out/bundle.edgerec" "${request[@]}" \
  --out "$out/recs.tsv" --requests-out "$out/requests.jsonl" "${print[@]}"
# The ranked bundle, and every third user has been shown the 3 most popular titles 3 times
# without a play, so the fatigue filter has work to do.
mkdir -p "$out/device"
cp "$out/bundle-ranked.edgerec" "$out/device/bundle.edgerec"
"$bin" recommend --bundle "$out/device/bundle.edgerec" "${request[@]}" --shown-popular 3 \
  --out "$out/device/recs.tsv" --requests-out "$out/device/requests.jsonl" "${print[@]}"
