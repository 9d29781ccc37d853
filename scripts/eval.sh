#!/usr/bin/env bash
# The offline evaluation of the candidate sources (`edgerec eval`): MovieLens-100K under the
# temporal and leave-last-out protocols, and a small synthetic world under the time-series
# folds with its oracle; on every split also the second stage (blend → ranker → top-10, the
# rankers — logistic regression, gradient-boosted trees and the deep network — trained on the
# split's past: `--rank-candidates 0` turns it off). Then the ranking stage's own report on the
# synthetic world: `edgerec pipeline` examples and `edgerec rank train` (AUC, log-loss,
# calibration per ranker on every time-series fold; model selection; importance). Writes
# $EDGEREC_ARTIFACTS/eval/{ml100k,world}/{report.md,report.json,plots/,splits/} and
# $EDGEREC_ARTIFACTS/rank/world/{report.md,report.json,plots/,ranker*.onnx}.
#   bash scripts/eval.sh            the evaluation (CI runs this)
#   bash scripts/eval.sh --peers    also the peer baselines (implicit's ALS and BPR, EASE, item-kNN) on
#                                   the same splits, then the evaluation again with their rows
# WORLD_USERS / WORLD_ITEMS / WORLD_DAYS size the synthetic world (default 3000 / 2000 / 35);
# DEEP_EPOCHS caps the deep ranker's epochs (default 6; 0 leaves it out of eval).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
peers=0
[ "${1:-}" = "--peers" ] && peers=1

step "build the trainer CLI"
cargo build --workspace --all-targets
bin="$EDGEREC_BIN"
raw="$EDGEREC_DATA/ml-100k"
world="$EDGEREC_DATA/world"
synthetic="$EDGEREC_DATA/eval-world"
out="$EDGEREC_ARTIFACTS/eval"

step "MovieLens-100K as a canonical world"
"$bin" data fetch movielens-100k --out "$raw"
"$bin" data import movielens-100k --src "$raw" --out "$world"

step "synthetic world"
users="${WORLD_USERS:-3000}" items="${WORLD_ITEMS:-2000}" days="${WORLD_DAYS:-35}"
stamp="$synthetic/.edgerec-world-$users-$items-$days"
if [ ! -e "$stamp" ]; then
  rm -rf "$synthetic"
  "$bin" simulate --users "$users" --items "$items" --days "$days" --seed 7 --out "$synthetic"
  touch "$stamp"
fi

run() {
  local name="$1"; shift
  local peer_args=()
  if [ "$peers" = 1 ]; then
    # First pass writes the splits; the peers train on them; the second pass scores them.
    "$bin" eval "$@" --out "$out/$name" > /dev/null
    step "peers on $name"
    bash scripts/bench-peers.sh --splits "$out/$name/splits" --out "$out/$name/peers" --threads 0
    peer_args=(--peers "$out/$name/peers")
  fi
  step "evaluate: $name"
  "$bin" eval "$@" --out "$out/$name" "${peer_args[@]}"
}

deep_epochs="${DEEP_EPOCHS:-6}"
# The quality gate: the row users get may not fall below the blend of its own sources on
# MovieLens leave-last-out (by more than one paired standard error); eval fails otherwise.
run ml100k --world "$world" --dataset movielens-100k --protocols temporal,leave-last-out \
  --rank-deep-epochs "$deep_epochs" --require 'leave-last-out:device>=blend'
run world --world "$synthetic" --dataset "synthetic world ($users users, $items items, $days days)" \
  --protocols folds --folds 2 --fold-days 7 --max-users 1500 --rank-deep-epochs "$deep_epochs"

step "ranking stage on the synthetic world: examples, then every ranker on every fold"
"$bin" pipeline --world "$synthetic" --out "$synthetic-examples" --folds 3 --fold-days 7
deep_args=(--deep-epochs "$deep_epochs")
[ "$deep_epochs" = 0 ] && deep_args=(--no-deep)
"$bin" rank train --examples "$synthetic-examples" --out "$EDGEREC_ARTIFACTS/rank/world" \
  "${deep_args[@]}"
