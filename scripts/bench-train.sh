#!/usr/bin/env bash
# Benchmark (not a test) of training at scale: iALS on synthetic worlds of 1M, 3M and 10M users.
# The catalog-bounded streaming trainer (edgerec_train::stream) reports wall time and peak RSS
# against users. At the first size the in-memory trainer runs too, and both are paired on the
# held-out last week (Recall@10, NDCG@10 with standard errors). Fixed seeds; worlds are deleted
# afterwards unless KEEP=1.
#   bash scripts/bench-train.sh [USERS...]      (default: 1000000 3000000 10000000)
#   ITEMS=20000 DAYS=14 ITERATIONS=10 FACTORS=64 override the world and the fit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1000000 3000000 10000000)
items="${ITEMS:-20000}"
days="${DAYS:-14}"
root="$EDGEREC_DATA/bench-train"

step "build (the workspace's targets, examples included)"
cargo build --workspace --all-targets
example="$CARGO_TARGET_DIR/debug/examples/ials_scale"

first=1
for users in "${sizes[@]}"; do
  world="$root/world-$users"
  if [ ! -f "$world/world.json" ]; then
    step "simulate --users $users --items $items --days $days"
    "$EDGEREC_BIN" simulate --users "$users" --items "$items" --days "$days" --seed 1 --out "$world" > /dev/null
  fi
  mode=stream
  [ "$first" = 1 ] && mode=both
  step "iALS on $users users ($mode)"
  # About 20,000 evaluation users at every size.
  "$example" --world "$world" --mode "$mode" --iterations "${ITERATIONS:-10}" --factors "${FACTORS:-64}" \
    --eval-every "$(( users / 20000 > 0 ? users / 20000 : 1 ))"
  first=0
  [ "${KEEP:-0}" = 1 ] || rm -rf "$world"
done
