#!/usr/bin/env bash
# Benchmark (not a test) of training at scale, wall time and peak RSS against users:
# * iALS on synthetic worlds of 1M, 3M and 10M users. The catalog-bounded streaming trainer
#   (edgerec_train::stream) runs at every size; at the first size the in-memory trainer runs
#   too, and both are paired on the held-out last week (Recall@10, NDCG@10 with standard
#   errors).
# * The two-tower model on the same worlds, the same way: trained from the world's tables a
#   chunk of users at a time (edgerec_fit::stream::TowerExamplesByUser), at the first size also
#   from the same examples held in memory (twice, seeds 42 and 43: the spread of two shuffles);
#   at most TOWER_EXAMPLES examples per user (default 4), TOWER_EPOCHS epochs (default 1).
#   TOWER=0 skips it.
# * The rankers on the pipeline's examples of RANK_SIZES worlds (default 100k and 1M users; the
#   1M world's examples take 18 GB of disk, 10M would take 180 GB): the logistic regression and
#   the boosted trees streamed from the files (LR by passes, the trees on a sample of at most
#   SAMPLE rows) and, in a separate process, from memory as `edgerec rank train` loads them;
#   AUC and weighted log-loss on the newest validation window.
# Fixed seeds; worlds and examples are deleted afterwards unless KEEP=1.
#   bash scripts/bench-train.sh [USERS...]      (default: 1000000 3000000 10000000)
#   ITEMS=20000 DAYS=14 ITERATIONS=10 FACTORS=64 RANK_SIZES="100000 1000000" SAMPLE=2000000
#   MEMORY_RANK_MAX=1000000 (largest size whose examples are also loaded in memory) override
#   the worlds and the fits; RANK_SIZES="", IALS=0 and TOWER=0 each skip a part.
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
rank_example="$CARGO_TARGET_DIR/debug/examples/rank_scale"
tower_example="$CARGO_TARGET_DIR/debug/examples/tower_scale"

simulate() { # users world
  if [ ! -f "$2/world.json" ]; then
    step "simulate --users $1 --items $items --days $days"
    "$EDGEREC_BIN" simulate --users "$1" --items "$items" --days "$days" --seed 1 --out "$2" > /dev/null
  fi
}

for users in ${RANK_SIZES-100000 1000000}; do
  world="$root/world-$users"
  out="$root/examples-$users"
  simulate "$users" "$world"
  if [ ! -f "$out/report.json" ]; then
    step "pipeline on $users users"
    "$EDGEREC_BIN" pipeline --world "$world" --out "$out" --partitions "$(nproc)" > /dev/null
  fi
  step "rankers on the examples of $users users: streamed"
  "$rank_example" --examples "$out" --mode stream --sample "${SAMPLE:-2000000}"
  if [ "$users" -le "${MEMORY_RANK_MAX:-1000000}" ]; then
    step "rankers on the examples of $users users: in memory"
    "$rank_example" --examples "$out" --mode memory
  fi
  if [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$out"
    # The iALS half reuses a world of its own sizes.
    [[ " ${sizes[*]} " == *" $users "* ]] || rm -rf "$world"
  fi
done

[ "${IALS:-1}" = 1 ] || [ "${TOWER:-1}" = 1 ] || exit 0
first=1
for users in "${sizes[@]}"; do
  world="$root/world-$users"
  simulate "$users" "$world"
  mode=stream
  [ "$first" = 1 ] && mode=both
  # About 20,000 evaluation users at every size.
  every="$(( users / 20000 > 0 ? users / 20000 : 1 ))"
  if [ "${IALS:-1}" = 1 ]; then
    step "iALS on $users users ($mode)"
    "$example" --world "$world" --mode "$mode" --iterations "${ITERATIONS:-10}" --factors "${FACTORS:-64}" \
      --eval-every "$every"
  fi
  if [ "${TOWER:-1}" = 1 ]; then
    step "two-tower on $users users ($mode)"
    # At the first size a second in-memory fit with another seed: the spread of two shuffles.
    control=()
    [ "$mode" = both ] && control=(--control-seed 43)
    "$tower_example" --world "$world" --mode "$mode" --eval-every "$every" "${control[@]}" \
      --examples-per-user "${TOWER_EXAMPLES:-4}" --epochs "${TOWER_EPOCHS:-1}"
  fi
  first=0
  [ "${KEEP:-0}" = 1 ] || rm -rf "$world"
done
