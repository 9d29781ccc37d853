#!/usr/bin/env bash
# Benchmark of `edgerec simulate` (not a test): generates worlds of 100k and 1M users and prints
# events/s and peak memory of each run. Fixed seeds; the worlds are deleted afterwards unless
# KEEP=1. Usage: bash scripts/bench-simulate.sh [USERS...]   (default: 100000 1000000)
#
# The simulator's own code is compiled at opt-level 2 for this run (dependencies already are in
# the dev profile); without it, unoptimised generation is about 10× slower.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100000 1000000)
items="${ITEMS:-20000}"
days="${DAYS:-14}"
seed="${SEED:-1}"
out_root="$EDGEREC_DATA/bench-simulate"

step "build the trainer CLI (edgerec-data at opt-level 2)"
cargo build -p edgerec-cli --config 'profile.dev.package.edgerec-data.opt-level=2'
bin="$EDGEREC_BIN"
printf 'machine: %s cores, %s\n' "$(nproc)" "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"

for users in "${sizes[@]}"; do
    out="$out_root/u$users"
    step "simulate --users $users --items $items --days $days --seed $seed"
    log="$(mktemp)"
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -v "$bin" simulate --users "$users" --items "$items" --days "$days" \
            --seed "$seed" --out "$out" 2> "$log"
        grep -E "Elapsed \(wall clock\)|Maximum resident set size|Percent of CPU" "$log" |
            sed 's/^\s*/  time: /'
    else
        # The CLI summary reports peak RSS from /proc/self/status itself.
        "$bin" simulate --users "$users" --items "$items" --days "$days" --seed "$seed" \
            --out "$out"
    fi
    rm -f "$log"
    printf '  on disk: %s\n' "$(du -sh "$out" | cut -f1)"
    [ "${KEEP:-0}" = 1 ] || rm -rf "$out"
done
