#!/usr/bin/env bash
# Benchmark (not a test): our iALS fit against the `implicit` library's ALS on the same
# MovieLens-100K splits (`edgerec eval`'s temporal and leave-last-out pasts) with the same
# factors, iterations, alpha and lambda, on one thread and on every core. Prints the median of
# three fits each and the ratio ours / implicit (below 1: ours is faster).
#   bash scripts/bench-ials.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step "build"
cargo build --workspace --all-targets
cargo build -p edgerec-train --example ials_fit
bin="$EDGEREC_BIN"
fit="$CARGO_TARGET_DIR/debug/examples/ials_fit"
out="$EDGEREC_ARTIFACTS/bench-ials"
splits="$out/splits"
if [ ! -f "$splits/leave-last-out/train.tsv" ]; then
  step "splits"
  "$bin" data fetch movielens-100k --out "$EDGEREC_DATA/ml-100k"
  "$bin" data import movielens-100k --src "$EDGEREC_DATA/ml-100k" --out "$EDGEREC_DATA/world"
  "$bin" eval --world "$EDGEREC_DATA/world" --out "$out" --tower-epochs 0 > /dev/null
fi

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rows=()
for split in temporal leave-last-out; do
  for threads in 1 0; do
    step "$split, threads: ${threads/#0/all}"
    if [ "$threads" = 0 ]; then ours=$(REPEATS=3 "$fit" "$splits/$split" | awk '{ print $1 }')
    else ours=$(RAYON_NUM_THREADS=$threads REPEATS=3 "$fit" "$splits/$split" | awk '{ print $1 }'); fi
    theirs=$(for _ in 1 2 3; do
      bash scripts/bench-peers.sh --splits "$splits" --out "$out/peers-$threads" --only "$split" \
        --method implicit-als --threads "$threads" > /dev/null
      python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["implicit-als"]["fit_s"])' \
        "$out/peers-$threads/$split/timings.json"
    done | median)
    rows+=("$(printf '| %s | %s | %.3f | %.3f | %.2f |' "$split" "${threads/#0/all ($(nproc))}" \
      "$ours" "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { print a / b }')")")
  done
done
step "iALS fit time, median of 3 (64 factors, 15 iterations, conjugate gradient with 3 steps)"
echo "| split | threads | ours s | implicit s | ours / implicit |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
