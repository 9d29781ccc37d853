#!/usr/bin/env bash
# Benchmark (not a test) of the data half: `edgerec simulate` then `edgerec pipeline` on worlds
# of 100k and 1M users, printing events/s (and per core) and peak memory of each stage side by
# side; the pipeline runs on one partition (one core merging) and on one partition per core.
# Fixed seeds; worlds and examples are deleted afterwards unless KEEP=1.
#   bash scripts/bench-data.sh [USERS...]        (default: 100000 1000000)
#   ITEMS=20000 DAYS=14 MEMORY_MIB=4096 override the world size and the pipeline's memory pool.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100000 1000000)
items="${ITEMS:-20000}"
days="${DAYS:-14}"
root="$EDGEREC_DATA/bench-data"
[ -x /usr/bin/time ] || { echo "bench-data: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

step "build (the test profile: dependencies and the data crates optimised)"
cargo build --workspace --all-targets
bin="$EDGEREC_BIN"
# A failed run leaves no cluster behind.
trap '"$bin" cluster down --dir "$root/cluster" > /dev/null 2>&1 || true' EXIT

# Runs a command under /usr/bin/time -v; prints "seconds peak_mib".
measure() {
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" 2> "$log" > "$log.out" || { cat "$log" "$log.out" >&2; exit 1; }
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i] }
              /Maximum resident set size/ { m = $2 / 1024 }
              END { printf "%.1f %.0f\n", s, m }' "$log"
  rm -f "$log" "$log.out"
}

results=()
for users in "${sizes[@]}"; do
  world="$root/world-$users"
  out="$root/examples-$users"
  step "simulate --users $users --items $items --days $days"
  read -r sim_s sim_mib < <(measure "$bin" simulate --users "$users" --items "$items" --days "$days" --seed 1 --out "$world")
  events=$(python3 -c "import json; c=json.load(open('$world/world.json'))['counts']; print(c['impressions'] + c['plays'] + c['searches'])")
  input=$(python3 -c "import json; c=json.load(open('$world/world.json'))['counts']; print(c['impressions'] + c['plays'])")
  results+=("$(printf '| %s | simulate | 1 | %s events | %s | %.2f M/s | %.2f M/s | %s MiB |' "$users" "$events" "$sim_s" "$(echo "$events / $sim_s / 1000000" | bc -l)" "$(echo "$events / $sim_s / 1000000" | bc -l)" "$sim_mib")")
  for partitions in 1 "$(nproc)"; do
    step "pipeline over $input plays and impressions, $partitions partition(s)"
    read -r pipe_s pipe_mib < <(measure "$bin" pipeline --world "$world" --out "$out" --memory-mib "${MEMORY_MIB:-4096}" --partitions "$partitions")
    examples=$(python3 -c "import json; print(json.load(open('$out/report.json'))['after']['rows'])")
    results+=("$(printf '| %s | pipeline | %s | %s events → %s examples | %s | %.2f M/s | %.2f M/s | %s MiB |' "$users" "$partitions" "$input" "$examples" "$pipe_s" "$(echo "$input / $pipe_s / 1000000" | bc -l)" "$(echo "$input / $pipe_s / 1000000 / $partitions" | bc -l)" "$pipe_mib")")
  done
  step "pipeline on a Ballista cluster of $(nproc) executors"
  cluster="$root/cluster"
  url=$("$bin" cluster up --executors "$(nproc)" --vcores 1 --memory-mib "${MEMORY_MIB:-4096}" --dir "$cluster")
  read -r pipe_s pipe_mib < <(measure "$bin" pipeline --world "$world" --out "$out" --memory-mib "${MEMORY_MIB:-4096}" --partitions "$(nproc)" --engine ballista --scheduler "$url")
  cluster_mib=$(python3 -c "
import json
pids = json.load(open('$cluster/cluster.json'))['pids']
kib = sum(int(l.split()[1]) for p in pids for l in open(f'/proc/{p}/status') if l.startswith('VmHWM'))
print(round(kib / 1024))")
  "$bin" cluster down --dir "$cluster" > /dev/null
  examples=$(python3 -c "import json; print(json.load(open('$out/report.json'))['after']['rows'])")
  results+=("$(printf '| %s | pipeline on Ballista (%s executors) | %s | %s events → %s examples | %s | %.2f M/s | %.2f M/s | %s + %s MiB |' "$users" "$(nproc)" "$(nproc)" "$input" "$examples" "$pipe_s" "$(echo "$input / $pipe_s / 1000000" | bc -l)" "$(echo "$input / $pipe_s / 1000000 / $(nproc)" | bc -l)" "$pipe_mib" "$cluster_mib")")
  [ "${KEEP:-0}" = 1 ] || rm -rf "$world" "$out"
done

printf '\nmachine: %s cores, %s\n\n' "$(nproc)" "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
echo "| users | stage | partitions | volume | wall s | events/s | events/s per partition | peak RSS (client + cluster) |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
