// Benchmark (not a test): the whole on-device pipeline, `Recommender.recommendRow`, in wasm
// (pkg/node, the npm package's node build) against the same requests natively.
//
//   bash scripts/bench-device.sh                  # builds and runs both sides, then this
//   node bench/device.mjs <out dir> [--passes N] [--warmup-ms N] [--pkg DIR]
//
// <out dir> is what `cargo run --release -p edgerec --example device_bench -- <out dir>` wrote:
// bundle-20k.edgerec (20,000 titles, int8 item vectors, a logistic-regression ranker, 500
// candidates per request) and states.json (every user state as UserState bytes, its
// recommendRow options, the native row's item ids and the native per-stage medians).
//
// What it does: loads the bundle (`new Recommender(bytes)`, median of 3 loads after the
// first), restores every state with `UserState.fromBytes`, runs every request once (the rows
// compared with the native rows: the same item ids in the same order are required; every
// mismatch is printed and the exit code is 1), warms up for at least --warmup-ms (V8 first runs
// wasm in its baseline compiler and tiers hot functions up in the background), then times
// --passes passes over all requests (default: the native side's passes). The timings are the
// core's own per-stage clock (performance.now() through the host), as natively (std::time);
// each stage's median over all timed requests, on its own.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const STAGES = [
  ["user", "userMs"],
  ["candidates", "candidatesMs"],
  ["features", "featuresMs"],
  ["ranking", "rankingMs"],
  ["rerank", "rerankMs"],
  ["total", "totalMs"],
];

const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  if (v === undefined) throw new Error(`--${name} needs a value`);
  return v;
}
const pkgDir = resolve(option("pkg", join(REPO, "pkg", "node")));
const passesOpt = option("passes", null);
const WARMUP_MS = Number(option("warmup-ms", 3000));
const outDir = resolve(args[0] ?? join(REPO, "target", "device-bench"));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
const fmt = (x, digits = 3) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(digits));
const pad = (s, n) => String(s).padStart(n);

const spec = JSON.parse(readFileSync(join(outDir, "states.json"), "utf8"));
const bundle = readFileSync(join(outDir, spec.bundle));
const PASSES = passesOpt === null ? spec.passes : Number(passesOpt);
if (!Number.isInteger(PASSES) || PASSES < 1) throw new Error("--passes needs a positive integer");

const require = createRequire(import.meta.url);
let t0 = performance.now();
const { Recommender, UserState } = require(join(pkgDir, "edgerec.js"));
const startMs = performance.now() - t0;
if (typeof Recommender?.prototype?.recommendRow !== "function") {
  console.error(`${pkgDir} has no Recommender.recommendRow: rebuild it (bash scripts/build-wasm.sh)`);
  process.exit(2);
}

// Load: the first load warms caches; report the median of the next three.
const loads = [];
let rec;
for (let i = 0; i < 4; i++) {
  t0 = performance.now();
  const r = new Recommender(bundle);
  const ms = performance.now() - t0;
  if (i > 0) loads.push(ms);
  if (rec) rec.free();
  rec = r;
}

const requests = spec.states.map((s) => ({
  kind: s.kind,
  finished: s.finished,
  state: UserState.fromBytes(fromHex(s.state)),
  options: s.options,
  native: s.native,
}));

// One pass for the rows: they must equal the native rows.
const mismatches = [];
for (const [i, r] of requests.entries()) {
  const row = rec.recommendRow(r.state, r.options);
  const ids = row.items.map((it) => it.itemId);
  if (ids.length !== r.native.length || ids.some((id, j) => id !== r.native[j])) {
    mismatches.push({ i, kind: r.kind, finished: r.finished, wasm: ids, native: r.native });
  }
}

// Warm-up, then the timed passes.
const until = performance.now() + WARMUP_MS;
let warm = 0;
while (performance.now() < until) {
  for (const r of requests) rec.recommendRow(r.state, r.options);
  warm++;
}
const samples = Object.fromEntries(STAGES.map(([, key]) => [key, []]));
const wall = [];
for (let p = 0; p < PASSES; p++) {
  for (const r of requests) {
    const w0 = performance.now();
    const row = rec.recommendRow(r.state, r.options);
    wall.push(performance.now() - w0);
    for (const [, key] of STAGES) samples[key].push(row.timings[key]);
  }
}
const wasm = Object.fromEntries(STAGES.map(([, key]) => [key, median(samples[key])]));
const native = spec.native[spec.variant];

// The package ships each module once, in pkg/web/ (the node glue loads it from there).
const wasmFile = join(pkgDir, "..", "web", "edgerec_bg.wasm");
const wasmBytes = readFileSync(wasmFile);
// The features the module was compiled with (its target_features section, when kept).
const features = WebAssembly.Module.customSections(new WebAssembly.Module(wasmBytes), "target_features")
  .map((s) => Buffer.from(s).toString("latin1"))
  .join("");
const simd = features === "" ? "unknown" : features.includes("simd128") ? "yes" : "no";
console.log(
  `device pipeline, wasm (node ${process.version}, ${cpus().length} CPUs: ${cpus()[0]?.model ?? "?"}, ` +
    `load average ${loadavg().map((x) => x.toFixed(2)).join(" ")})`,
);
console.log(
  `bundle ${spec.bundle} (${spec.variant}, ${bundle.length} bytes): ${spec.titles} titles, ` +
    `${spec.candidates} candidates, rows of ${spec.k}; ${requests.length} requests ` +
    `(${requests.filter((r) => r.kind === "onboarding").length} onboarding-only users)`,
);
console.log(
  `wasm module ${wasmFile}: ${wasmBytes.length} bytes, ` +
    `${gzipSync(wasmBytes, { level: 9 }).length} gzip -9, simd128: ${simd}; require() ${fmt(startMs, 1)} ms`,
);
console.log(
  `native: ${spec.profile}; wasm: ${PASSES} passes × ${requests.length} requests after ` +
    `${warm} warm-up passes (≥ ${WARMUP_MS} ms)`,
);
console.log("");
console.log(`## recommendRow: median ms per stage, native vs wasm (${spec.variant} bundle)`);
console.log(`${"stage".padEnd(12)}  ${pad("native ms", 10)}  ${pad("wasm ms", 10)}  ${pad("wasm/native", 11)}`);
for (const [name, key] of STAGES) {
  const [n, w] = [native[key], wasm[key]];
  const ratio = n > 0 ? `${(w / n).toFixed(2)}×` : "-";
  console.log(`${name.padEnd(12)}  ${pad(fmt(n), 10)}  ${pad(fmt(w), 10)}  ${pad(ratio, 11)}`);
}
const loadWasm = median(loads);
console.log(
  `${"bundle load".padEnd(12)}  ${pad(fmt(native.loadMs, 1), 10)}  ${pad(fmt(loadWasm, 1), 10)}  ` +
    `${pad(native.loadMs > 0 ? `${(loadWasm / native.loadMs).toFixed(2)}×` : "-", 11)}`,
);
console.log(
  `(each stage's median on its own, so the stages need not add up to the total; wasm wall time ` +
    `per call, JS conversion included: median ${fmt(median(wall))} ms)`,
);
console.log("");
if (mismatches.length === 0) {
  console.log(`rows: all ${requests.length} wasm rows equal the native rows (same item ids, same order)`);
} else {
  console.log(`rows: ${mismatches.length} of ${requests.length} wasm rows differ from the native rows:`);
  for (const m of mismatches) {
    console.log(
      `  request ${m.i} (${m.kind}, ${m.finished} finished): wasm [${m.wasm.join(", ")}] ` +
        `native [${m.native.join(", ")}]`,
    );
  }
  process.exitCode = 1;
}
