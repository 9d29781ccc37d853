// The mutation suite in wasm: the same 1,502 generated bundles and user states with valid
// checksums that tests/mutations.rs runs natively (written by `cargo run --example mutations`
// into $EDGEREC_ARTIFACTS/mutations, see scripts/test.sh), through the npm package in node.
// Each must be refused with an EdgerecError carrying a code, or load and answer every probe
// request with a row that keeps the rules (no title twice, every title in the catalog, no
// finished title, at most k, finite scores) or a coded error — never a trap (a wasm panic
// aborts the module), a plain Error, or a case slower than the cap — and each decided as the
// native build decided (index.json records it).
//
//   node --test tests/js/mutations.test.mjs

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { test } from "node:test";

import { ARTIFACTS, REPO, requireFile, requirePackageBuild } from "./fixtures.mjs";
import { fromHex } from "../../www/parity.js";

requirePackageBuild();
const edgerec = createRequire(import.meta.url)(join(REPO, "pkg/node/edgerec.js"));
const DIR = join(ARTIFACTS, "mutations");
const CASE_CAP_MS = 10_000;

let lastMessage = "";

/** Runs `fn`; a throw must be an EdgerecError with a code. Returns [value, code]. */
function coded(fn, what) {
  try {
    return [fn(), null];
  } catch (err) {
    lastMessage = String(err?.message);
    if (err?.name !== "EdgerecError" || typeof err.code !== "string") {
      throw new Error(`${what}: threw ${err?.name}: ${err?.message} (no code: a trap or an uncoded error)`);
    }
    return [null, err.code];
  }
}

/** The probe rows of `rec` for `states`; throws on a broken rule. */
function probe(rec, states, time, what) {
  const catalog = new Set(rec.items().map((i) => i.itemId));
  const requests = [
    { context: { device: "tv", timestamp: time, utcOffsetMinutes: 60 } },
    { context: { device: "mobile", timestamp: time, utcOffsetMinutes: 60 }, k: 10, useRanker: false },
  ];
  let rows = 0;
  for (const state of states) {
    const finished = new Set(state.finishedTitles());
    for (const options of requests) {
      const [row] = coded(() => rec.recommendRow(state, options), what);
      if (!row) continue;
      rows += 1;
      const ids = row.items.map((r) => r.itemId);
      assert.ok(ids.length <= (options.k ?? 1000), `${what}: ${ids.length} titles`);
      assert.equal(new Set(ids).size, ids.length, `${what}: a title twice`);
      for (const r of row.items) {
        assert.ok(catalog.has(r.itemId), `${what}: title ${r.itemId} is not in the catalog`);
        assert.ok(!finished.has(r.itemId), `${what}: finished title ${r.itemId} came back`);
        assert.ok(Number.isFinite(r.score), `${what}: title ${r.itemId} scored ${r.score}`);
      }
    }
  }
  return rows;
}

test("every generated input is refused with a code or serves rows that keep the rules, in wasm", () => {
  const indexPath = requireFile(join(DIR, "index.json"), "run `cargo run --example mutations -- $EDGEREC_ARTIFACTS/mutations`");
  const index = JSON.parse(readFileSync(indexPath, "utf8"));
  assert.ok(index.cases.length >= 1500, `${index.cases.length} cases`);
  const device = new edgerec.Recommender(new Uint8Array(readFileSync(join(DIR, "device.edgerec"))));
  const probeStates = () => index.states.map((hex) => edgerec.UserState.fromBytes(fromHex(hex)));
  const outcomes = {};
  let slowest = [0, ""];
  const differ = [];
  for (const c of index.cases) {
    const bytes = new Uint8Array(readFileSync(join(DIR, c.file)));
    const what = c.name;
    const start = performance.now();
    let outcome;
    let wasmWhy = "";
    if (c.input === "bundle") {
      const [rec, code] = coded(() => new edgerec.Recommender(bytes), what);
      wasmWhy = rec ? "" : lastMessage;
      if (rec) {
        const states = probeStates();
        try {
          probe(rec, states, index.time, what);
        } finally {
          states.forEach((s) => s.free());
          rec.free();
        }
        outcome = "bundle served";
      } else {
        outcome = `refused ${code}`;
      }
    } else {
      const [state, code] = coded(() => edgerec.UserState.fromBytes(bytes), what);
      if (state) {
        try {
          const again = edgerec.UserState.fromBytes(state.toBytes());
          assert.deepEqual(Array.from(again.toBytes()), Array.from(state.toBytes()), `${what}: export/import differs`);
          again.free();
          probe(device, [state], index.time, what);
        } finally {
          state.free();
        }
        outcome = "state served";
      } else {
        outcome = `refused ${code}`;
      }
    }
    const took = performance.now() - start;
    if (took > slowest[0]) slowest = [took, what];
    assert.ok(took <= CASE_CAP_MS, `${what}: took ${took.toFixed(0)} ms`);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    const decided = outcome.endsWith("served") ? "served" : outcome;
    // A model whose arithmetic overflows or divides by zero gives NaN, which tract's native
    // kernels drop (x86 max) and its wasm kernels propagate; the load probes refuse any graph
    // that computes a non-finite value on the way, so both builds decide alike.
    if (decided !== c.native) differ.push(`${what}: native ${c.native} (${c.why}), wasm ${decided} (${wasmWhy})`);
  }
  device.free();
  console.log(`${index.cases.length} cases in wasm: ${JSON.stringify(outcomes)}; slowest ${slowest[0].toFixed(0)} ms (${slowest[1]})`);
  // The native and wasm builds reach the same decision on the same bytes.
  assert.deepEqual(differ, [], `${differ.length} cases decided differently natively and in wasm`);
  assert.ok((outcomes["bundle served"] ?? 0) >= 50, JSON.stringify(outcomes));
  assert.ok((outcomes["state served"] ?? 0) >= 20, JSON.stringify(outcomes));
});
