// Benchmark (not a test): a bundle's load time and the wasm memory high-water mark of load +
// recommend, per wasm build, each in a fresh process (wasm memory only grows, so its size after
// the work is the high-water mark of the whole instance: the module's own data, the bundle
// copied in, the decoded model, the runtimes and the rows).
//
//   node bench/memory.mjs <fixture>...
//
// A <fixture> is a directory holding either bundle.edgerec and requests.jsonl (a parity fixture
// of scripts/artifacts.sh: $EDGEREC_ARTIFACTS, $EDGEREC_ARTIFACTS/device) or
// bundle-20k.edgerec and states.json (what examples/device_bench.rs writes: the synthetic
// 20,000-title bundle and 200 user states). Uses pkg/web (scripts/build-wasm.sh).
//
// Per fixture and build (SIMD, baseline) it prints: the first load (a cold instance: what a
// page pays once), the median of 5 later loads, the loader's memory estimate (what the memory
// budget is checked against), and the instance's memory after instantiation, after the first
// load and after every request of the fixture (the high-water mark).

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const WEB = join(REPO, "pkg", "web");
const MIB = 1 << 20;

/** One measurement, in this (fresh) process: prints its JSON. */
async function child(fixture, flavour) {
  const web = await import(join(WEB, "edgerec.js"));
  const file = flavour === "simd" ? "edgerec_bg.wasm" : "edgerec_baseline_bg.wasm";
  const exports = await web.default({ module_or_path: readFileSync(join(WEB, file)) });
  const memory = () => exports.memory.buffer.byteLength;
  const { bundle, requests } = readFixture(fixture);
  const atStart = memory();
  let t = performance.now();
  const rec = new web.Recommender(bundle);
  const firstLoadMs = performance.now() - t;
  const afterLoad = memory();
  const estimate = rec.memoryEstimate.total;
  for (const { state, options } of requests) {
    const s = web.UserState.fromBytes(state);
    rec.recommendRow(s, options);
    s.free();
  }
  const highWater = memory();
  const loads = [];
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    new web.Recommender(bundle).free();
    loads.push(performance.now() - t);
  }
  loads.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      bundleBytes: bundle.length,
      requests: requests.length,
      firstLoadMs,
      loadMs: loads[2],
      estimate,
      atStart,
      afterLoad,
      highWater,
    }),
  );
}

function readFixture(dir) {
  const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
  if (existsSync(join(dir, "states.json"))) {
    const spec = JSON.parse(readFileSync(join(dir, "states.json"), "utf8"));
    return {
      bundle: new Uint8Array(readFileSync(join(dir, spec.bundle))),
      requests: spec.states.map((s) => ({ state: fromHex(s.state), options: s.options })),
    };
  }
  const requests = readFileSync(join(dir, "requests.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l))
    .map((r) => ({ state: fromHex(r.state), options: r.options }));
  return { bundle: new Uint8Array(readFileSync(join(dir, "bundle.edgerec"))), requests };
}

if (process.argv[2] === "--child") {
  await child(process.argv[3], process.argv[4]);
} else {
  const fixtures = process.argv.slice(2);
  if (fixtures.length === 0) {
    console.error("usage: node bench/memory.mjs <fixture dir>...");
    process.exit(2);
  }
  const mib = (b) => (b / MIB).toFixed(1).padStart(7);
  const ms = (x) => x.toFixed(1).padStart(8);
  console.log(`wasm load time and memory (node ${process.version}; MiB of the instance's linear memory)`);
  console.log(
    `  ${"fixture".padEnd(34)} ${"build".padEnd(9)} ${"titles/bytes".padStart(12)} ${"1st load".padStart(8)} ${"load".padStart(8)} ${"estimate".padStart(8)} ${"start".padStart(7)} ${"loaded".padStart(7)} ${"peak".padStart(7)}`,
  );
  for (const fixture of fixtures) {
    for (const flavour of ["simd", "baseline"]) {
      const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", resolve(fixture), flavour], {
        encoding: "utf8",
      });
      if (run.status !== 0) {
        console.error(run.stderr);
        process.exit(1);
      }
      const r = JSON.parse(run.stdout.trim().split("\n").pop());
      console.log(
        `  ${fixture.slice(-34).padEnd(34)} ${flavour.padEnd(9)} ${`${(r.bundleBytes / MIB).toFixed(1)} MiB`.padStart(12)} ${ms(r.firstLoadMs)} ${ms(r.loadMs)} ${mib(r.estimate)}  ${mib(r.atStart)} ${mib(r.afterLoad)} ${mib(r.highWater)}   (${r.requests} rows)`,
      );
    }
  }
}
