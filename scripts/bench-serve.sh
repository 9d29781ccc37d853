#!/usr/bin/env bash
# Release server load benchmark (not a test; not run by CI): the real `edgerec serve` stack on
# 127.0.0.1 under keep-alive clients polling the manifest (mostly 304s), fetching it and
# downloading sections (crates/edgerec-server/examples/load.rs). Prints per kind requests,
# errors, p50/p99 latency and bytes, then requests/s of wall clock and per server core (the
# server threads' CPU time), and exits 1 if any request was answered wrongly.
#
#   bash scripts/bench-serve.sh [load options...]
#
# The store is published from $EDGEREC_ARTIFACTS/bundle.edgerec when it exists (the demo's
# bundle), else from the example's synthetic 20,000-title bundle; --bundle PATH picks another.
# Runs the example twice, without Accept-Encoding and with "Accept-Encoding: gzip, br" (what
# browsers send), unless the options name --accept-encoding. Other options go to the example:
# --clients N (64), --requests N (20000) or --seconds S, --server-threads N (1),
# --client-threads N (1), --fresh-ratio R (0.05), --section-ratio R (0.05), --items N,
# --events-ratio R (0: event batches POSTed into a durable SQLite event store; the report adds
# events/s and events/s per server core) and --events-per-batch N (20). Ingestion alone:
#   bash scripts/bench-serve.sh --events-ratio 1 --fresh-ratio 0 --section-ratio 0 --accept-encoding identity
# Reports go to $EDGEREC_ARTIFACTS/bench-serve (override with BENCH_SERVE_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

args=("$@")
encodings=("" "gzip, br")
for a in "${args[@]}"; do
  [ "$a" = --accept-encoding ] && encodings=("-")
done
if [ -f "$EDGEREC_ARTIFACTS/bundle.edgerec" ] && ! printf '%s\n' "${args[@]}" | grep -qx -- --bundle; then
  args=(--bundle "$EDGEREC_ARTIFACTS/bundle.edgerec" "${args[@]}")
fi
out="${BENCH_SERVE_OUT:-$EDGEREC_ARTIFACTS/bench-serve}"
mkdir -p "$out"
: > "$out/results.jsonl"

step "cargo build -p edgerec-server --example load"
cargo build -p edgerec-server --example load
bin="$CARGO_TARGET_DIR/debug/examples/load"

status=0
for enc in "${encodings[@]}"; do
  run=("${args[@]}")
  case "$enc" in
    -) name=custom ;;
    "") name=identity ;;
    *) name=$(echo "$enc" | tr -cs 'a-z0-9' '-' | sed 's/-$//'); run+=(--accept-encoding "$enc") ;;
  esac
  step "load ${run[*]}"
  "$bin" "${run[@]}" | tee "$out/$name.md" || status=1
  grep '^{"' "$out/$name.md" >> "$out/results.jsonl" || true
done

step "summary (reports in $out)"
python3 - "$out/results.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if rows:
    r = rows[0]
    print(f"{r['bundle']}; {r['clients']} clients on {r['client_threads']} client thread(s), "
          f"{r['server_threads']} server worker thread(s); mix {1 - r['fresh_ratio'] - r['section_ratio']:.0%} polls "
          f"(304), {r['fresh_ratio']:.0%} manifest fetches, {r['section_ratio']:.0%} section downloads; "
          f"{r['profile']} profile, {r['cores']} cores\n")
print("| Accept-Encoding | requests | req/s | server cores busy | req/s per server core | p50 ms | p99 ms | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
fmt = lambda v, f: "n/a" if v is None else format(v, f)
for r in rows:
    busy = None if r["server_cpu_s"] is None else r["server_cpu_s"] / r["wall_s"]
    print(f"| {r['accept_encoding'] or 'none'} | {r['requests']} | {r['req_per_s']:.0f} | {fmt(busy, '.2f')} "
          f"| {fmt(r['req_per_server_core_s'], '.0f')} | {fmt(r['p50_ms'], '.2f')} | {fmt(r['p99_ms'], '.2f')} "
          f"| {r['errors']} |")
EOF
exit "$status"
