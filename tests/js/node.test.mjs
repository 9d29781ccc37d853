// The npm package as a user gets it: `npm pack`, installed into a fresh project, then used from
// plain node scripts (ESM and CommonJS). Its rows (recommendRow, the one recommendation path)
// must equal the native CLI's.
//
//   node --test tests/js/node.test.mjs
//
// Needs scripts/build-wasm.sh to have run and the parity fixture (see fixtures.mjs).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { deviceRows, errorOf } from "../../www/parity.js";
import {
  REPO,
  assertErrorCode,
  assertDeviceParity,
  assertRankerParity,
  corruptedBundles,
  loadDeviceFixture,
  loadFixture,
  loadRankerFixture,
  requirePackageBuild,
  runCli,
} from "./fixtures.mjs";

const run = promisify(execFile);
const PARITY_HELPERS = pathToFileURL(join(REPO, "www", "parity.js")).href;

// Scripts written into the consumer project; each imports the package by its bare name.
const CONSUMER_FILES = {
  "package.json": JSON.stringify({ name: "edgerec-consumer", private: true }),
  // Re-exports the installed package so this test process can import it as the project would.
  "edgerec.mjs": `export * from "edgerec";\n`,
  "edgerec-web.mjs": `export { default } from "edgerec/web";\nexport * from "edgerec/web";\n`,
  // The parity run: a plain ESM script, as a user would write it.
  "parity.mjs": `
import { Recommender, UserState } from "edgerec";
import { readFileSync } from "node:fs";
const { bundlePath, requests, helpers } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { deviceRows } = await import(helpers);
const rec = new Recommender(readFileSync(bundlePath));
process.stdout.write(JSON.stringify(deviceRows(rec, UserState, requests)));
`,
  // CommonJS users get the same build through require().
  "require.cjs": `
const { Recommender } = require("edgerec");
const rec = new Recommender(require("node:fs").readFileSync(process.argv[2]));
process.stdout.write(JSON.stringify({ itemCount: rec.itemCount, modelVersion: rec.modelVersion }));
`,
};

/** Packs the repository as `npm publish` would and installs the tarball into a new project. */
async function installPackedPackage(dir) {
  requirePackageBuild();
  const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], {
    cwd: REPO,
  });
  const [{ filename }] = JSON.parse(stdout);
  const project = join(dir, "consumer");
  await mkdir(project);
  for (const [name, text] of Object.entries(CONSUMER_FILES)) {
    await writeFile(join(project, name), text);
  }
  await run("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", join(dir, filename)], {
    cwd: project,
  });
  return project;
}

describe("the npm package installed from its tarball", () => {
  // Made once, by the first test to run. If it fails (no fixture, no build), every test fails
  // with its message rather than being cancelled.
  let setup, dir;
  const ready = () => (setup ??= prepare());
  async function prepare() {
    const fixture = loadFixture();
    dir = await mkdtemp(join(tmpdir(), "edgerec-npm-"));
    const project = await installPackedPackage(dir);
    const edgerec = await import(pathToFileURL(join(project, "edgerec.mjs")).href);
    return { fixture, project, edgerec, rec: new edgerec.Recommender(fixture.bundle) };
  }

  after(async () => {
    (await setup?.catch(() => null))?.rec.free();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("an ESM script's rows equal the native CLI's for every parity user", async () => {
    const { fixture, project } = await ready();
    const input = join(project, "parity-input.json");
    const { bundlePath, requests } = fixture;
    await writeFile(input, JSON.stringify({ bundlePath, requests, helpers: PARITY_HELPERS }));
    const { stdout } = await run(process.execPath, ["parity.mjs", input], {
      cwd: project,
      maxBuffer: 64 << 20,
    });
    const ranked = assertDeviceParity(JSON.parse(stdout), fixture);
    // The default bundle ships a ranker only when `train`'s gate passed it: then every row is
    // ranked, else none.
    assert.ok(ranked === 0 || ranked === requests.length, `${ranked} of ${requests.length} rows ranked`);
  });

  test("require('edgerec') loads the same model from CommonJS", async () => {
    const { fixture, project, rec } = await ready();
    const { stdout } = await run(process.execPath, ["require.cjs", fixture.bundlePath], { cwd: project });
    assert.deepEqual(JSON.parse(stdout), { itemCount: rec.itemCount, modelVersion: rec.modelVersion });
  });

  test("the exports map names files in the tarball, each script with its types", async () => {
    const { fixture, project, rec } = await ready();
    const installed = join(project, "node_modules", "edgerec");
    const manifest = JSON.parse(await readFile(join(installed, "package.json"), "utf8"));
    // Every leaf of the conditions tree; every { default: "….js" } also needs a "types".
    const files = [];
    const untyped = [];
    const walk = (node) => {
      if (typeof node === "string") return files.push(node);
      if (/\.js$/.test(node.default) && !node.types) untyped.push(node.default);
      Object.values(node).forEach(walk);
    };
    walk(manifest.exports);
    assert.deepEqual(files.filter((f) => !existsSync(join(installed, f))), [], "named but not in the tarball");
    assert.deepEqual(untyped, [], "scripts exported without types");
    // The licenses the "license" field names ship with the code.
    assert.match(manifest.license, /MIT/);
    for (const f of ["LICENSE-MIT", "LICENSE-APACHE"]) assert.ok(existsSync(join(installed, f)), `${f} is not in the tarball`);
    // Both wasm builds ship, each once (the node and bundler entries load them from pkg/web/).
    const wasmFiles = readdirSync(installed, { recursive: true }).filter((f) => f.endsWith(".wasm")).sort();
    assert.deepEqual(wasmFiles, ["pkg/web/edgerec_baseline_bg.wasm", "pkg/web/edgerec_bg.wasm"]);

    // The "./web" subpath resolves by name and needs init() before use.
    const web = await import(pathToFileURL(join(project, "edgerec-web.mjs")).href);
    await web.default({ module_or_path: await readFile(join(installed, "pkg/web/edgerec_bg.wasm")) });
    const webRec = new web.Recommender(fixture.bundle);
    assert.equal(webRec.itemCount, rec.itemCount);
    webRec.free();
  });

  test("model metadata and row fields have the documented shapes", async () => {
    const { fixture, edgerec, rec } = await ready();
    assert.equal(typeof rec.modelVersion, "string");
    assert.notEqual(rec.modelVersion, "");
    const items = rec.items();
    assert.equal(items.length, rec.itemCount);
    for (const item of items) {
      assert.ok(Number.isInteger(item.itemId), `itemId ${item.itemId}`);
      assert.equal(typeof item.title, "string");
      assert.ok(item.year === null || Number.isInteger(item.year), `year ${item.year}`);
      assert.ok(Array.isArray(item.genres));
    }
    const genres = rec.genres();
    assert.ok(genres.length > 0 && genres.every((g) => typeof g === "string" && g !== ""));

    const { userId, state, options } = fixture.requests[0];
    const s = edgerec.UserState.fromBytes(Buffer.from(state, "hex"));
    const row = rec.recommendRow(s, options);
    s.free();
    assert.equal(row.items.length, fixture.expected.get(userId).ids.length);
    assert.equal(row.ranked, rec.ranker() !== null, "rows are ranked exactly when the bundle ships a ranker");
    for (const r of row.items) {
      assert.ok(Number.isInteger(r.itemId));
      assert.equal(typeof r.title, "string");
      assert.ok(r.year === null || Number.isInteger(r.year));
      assert.ok(Array.isArray(r.genres));
      assert.ok(Number.isFinite(r.score), `score ${r.score}`);
      assert.ok(["ials", "two-tower", "content", "popularity", "neighbours"].includes(r.placedBy), `placedBy ${r.placedBy}`);
      assert.ok(r.sources.some((x) => x.source === r.placedBy && Number.isInteger(x.rank)));
      assert.equal(typeof r.reason, "string");
      assert.ok(["because_you_watched", "because_you_like", "popular", "top_pick"].includes(r.reasonKind));
    }
  });

  test("the package loads the build this engine runs (EDGEREC_WASM=baseline forces the one without SIMD)", async () => {
    const { edgerec } = await ready();
    // node has had WebAssembly SIMD since 16.4: unforced, it gets the SIMD build.
    assert.equal(edgerec.wasmFlavour, process.env.EDGEREC_WASM ?? "simd");
  });

  test("recommendRow: the device pipeline's rows equal the native CLI's for every parity user", async () => {
    const { edgerec } = await ready();
    const device = loadDeviceFixture();
    const rec = new edgerec.Recommender(device.bundle);
    try {
      const rows = deviceRows(rec, edgerec.UserState, device.requests);
      const ranked = assertDeviceParity(rows, device);
      assert.equal(ranked, device.requests.length, "every row went through the bundle's ranker");
      // Shape: timings per stage, sources with their index, items with reasons.
      const { userId, state, options } = device.requests[1];
      const s = edgerec.UserState.fromBytes(Buffer.from(state, "hex"));
      const row = rec.recommendRow(s, options);
      for (const key of ["userMs", "candidatesMs", "featuresMs", "rankingMs", "rerankMs", "totalMs"]) {
        assert.ok(Number.isFinite(row.timings[key]) && row.timings[key] >= 0, `${key} ${row.timings[key]}`);
      }
      assert.ok(row.timings.totalMs >= row.timings.rankingMs);
      assert.equal(row.modelVersion, rec.modelVersion);
      assert.ok(row.sources.some((x) => x.source === "ials" && x.index === "flat-int8"), JSON.stringify(row.sources));
      const first = row.items[0];
      assert.deepEqual(Object.keys(first).sort(), ["genres", "itemId", "placedBy", "reason", "reasonKind", "score", "sources", "title", "year"]);
      assert.ok(!s.finishedTitles().some((id) => row.items.some((r) => r.itemId === id)), `user ${userId}: a finished title came back`);
      // Recording plays changes the next row: the first title, once finished, never returns.
      s.recordCompletion(first.itemId, options.context.timestamp - 60);
      const next = rec.recommendRow(s, options);
      assert.ok(!next.items.some((r) => r.itemId === first.itemId));
      // Bad options are refused with codes, and nothing changes.
      for (const [name, bad] of [
        ["k 0", { ...options, k: 0 }],
        ["unknown index", { ...options, index: "kd-tree" }],
        ["unknown field", { ...options, bogus: 1 }],
        ["lambda 2", { ...options, rerank: { lambda: 2 } }],
        ["no context", { k: 10 }],
      ]) {
        assertErrorCode(errorOf(() => rec.recommendRow(s, bad)), "invalid_argument", name);
      }
      assert.deepEqual(rec.recommendRow(s, options).items, next.items);
      s.free();
    } finally {
      rec.free();
    }
  });

  test("the bundle's ranker scores equal the trainer's", async (t) => {
    const { edgerec, rec } = await ready();
    const { inputs, expected, bundles } = loadRankerFixture();
    // The MovieLens bundle carries a ranker only when `train`'s gate passed one: its own
    // feature contract (with the candidate family), not the fixture's.
    const shipped = rec.ranker();
    for (const [name, want] of Object.entries(expected)) {
      await t.test(name, () => {
        const ranked = new edgerec.Recommender(bundles[name]);
        try {
          const info = ranked.ranker();
          assert.equal(info.dense.length, inputs[0].dense.length);
          assert.ok(["p_watch", "probabilities"].includes(info.output), `output ${info.output}`);
          assertRankerParity(Array.from(ranked.rankerScores(inputs)), want, name);
          // Inputs that do not fit the contract are refused, not scored.
          const short = [{ dense: inputs[0].dense.slice(1) }];
          assertErrorCode(errorOf(() => ranked.rankerScores(short)), "invalid_argument", "short dense");
          assertErrorCode(errorOf(() => ranked.rankerScores([])), "invalid_argument", "empty batch");
          assertErrorCode(errorOf(() => ranked.rankerScores([{ dense: [] , bogus: 1 }])), "invalid_argument", "unknown field");
        } finally {
          ranked.free();
        }
      });
    }
    if (shipped === null) {
      assertErrorCode(errorOf(() => rec.rankerScores(inputs)), "missing_section", "no ranker");
    } else {
      assert.ok(shipped.dense.includes("cand.blend_rr"), "the learned ranker reads the candidate family");
      assertErrorCode(errorOf(() => rec.rankerScores(inputs)), "invalid_argument", "another contract's inputs");
    }
  });

  test("mutated bundles are refused with typed errors while the loaded model keeps serving", async (t) => {
    const { fixture, edgerec, rec } = await ready();
    const { state: hex, options } = fixture.requests[1];
    const state = edgerec.UserState.fromBytes(Buffer.from(hex, "hex"));
    const rowBefore = rec.recommendRow(state, options).items;
    assert.equal(rowBefore.length, options.k);
    const other = loadRankerFixture().bundles.logistic;
    const cases = corruptedBundles(fixture.bundle, other);
    // Cases that need an optional section must not vanish when a fixture loses it: the
    // default bundle has MDIA, SERV, int8 FACT and TWRT, so every kind of damage applies.
    assert.equal(cases.length, 17, cases.map((c) => c.name).join(", "));
    for (const { name, bytes, code } of cases) {
      await t.test(name, () => {
        assertErrorCode(errorOf(() => new edgerec.Recommender(bytes)), code, name);
      });
    }
    assert.deepEqual(rec.recommendRow(state, options).items, rowBefore);
    state.free();
  });

  test("the memory budget: the estimate is reported, and a bundle above the budget is refused with over_budget", async () => {
    const { fixture, edgerec, rec } = await ready();
    const e = rec.memoryEstimate;
    assert.deepEqual(Object.keys(e).sort(), ["file", "request", "runtimes", "sections", "total"]);
    assert.equal(e.file, fixture.bundle.length);
    assert.equal(e.total, e.file + e.sections + e.runtimes + e.request);
    // The same estimate natively and in wasm: the native CLI prints it (`bundle inspect`).
    const native = runCli("bundle", "inspect", fixture.bundlePath).match(/memory: .*\((\d+) bytes: /);
    assert.ok(native, "bundle inspect prints the memory estimate");
    assert.equal(Number(native[1]), e.total);
    const tight = () => new edgerec.Recommender(fixture.bundle, { memoryBudgetBytes: e.total - 1 });
    const err = errorOf(tight);
    assertErrorCode(err, "over_budget", "one byte under the estimate");
    assert.match(err.message, /memory budget/);
    const fits = new edgerec.Recommender(fixture.bundle, { memoryBudgetBytes: e.total });
    assert.deepEqual(fits.memoryEstimate, e);
    fits.free();
    // A file larger than the budget is refused before it is decoded.
    assertErrorCode(errorOf(() => new edgerec.Recommender(fixture.bundle, { memoryBudgetBytes: 1024 })), "over_budget", "tiny budget");
  });

  test("invalid arguments are refused with code invalid_argument", async (t) => {
    const { fixture, edgerec, rec } = await ready();
    const { state: hex, options } = fixture.requests[0];
    const { context } = options;
    const state = edgerec.UserState.fromBytes(Buffer.from(hex, "hex"));
    const row = (o) => () => rec.recommendRow(state, o);
    const cases = {
      "unknown device": row({ ...options, context: { ...context, device: "toaster" } }),
      "k = 0": row({ ...options, k: 0 }),
      "negative k": row({ ...options, k: -1 }),
      "fractional k": row({ ...options, k: 2.5 }),
      "k above the limit": row({ ...options, k: 1001 }),
      "candidates above the limit": row({ ...options, candidates: 1001 }),
      "context without device": row({ ...options, context: { timestamp: context.timestamp } }),
      "fractional timestamp": row({ ...options, context: { ...context, timestamp: 1.5 } }),
      "offset beyond 18 hours": row({ ...options, context: { ...context, utcOffsetMinutes: 2000 } }),
      "searches not strings": row({ ...options, searches: [1] }),
      "unknown source": row({ ...options, source: "oracle" }),
      "misspelt rerank option": row({ ...options, rerank: { lamda: 0.5 } }),
      "unknown onboarding genre": () => {
        const s = new edgerec.UserState();
        try {
          s.setOnboarding(["No Such Genre"], []);
          return rec.recommendRow(s, options);
        } finally {
          s.free();
        }
      },
      // The glue's own class check (scripts/patch-glue.mjs) throws the package's errors too.
      "a plain object as the state": () => rec.recommendRow({ __wbg_ptr: 8 }, options),
      "the recommender as the state": () => rec.recommendRow(rec, options),
      "null as the state": () => rec.recommendRow(null, options),
      "a freed state": () => {
        const s = new edgerec.UserState();
        s.free();
        return rec.recommendRow(s, options);
      },
      "an unknown load option": () => new edgerec.Recommender(fixture.bundle, { memoryBudget: 1 }),
      "a fractional memory budget": () => new edgerec.Recommender(fixture.bundle, { memoryBudgetBytes: 1.5 }),
    };
    for (const [name, call] of Object.entries(cases)) {
      await t.test(name, () => assertErrorCode(errorOf(call), "invalid_argument", name));
    }
    state.free();
  });

  test("recommendRow applies the finished, fatigue and maturity filters with every source", async () => {
    const { fixture, edgerec, rec } = await ready();
    const { context } = fixture.requests[0].options;
    for (const source of [undefined, "ials", "two-tower", "content", "popularity", "neighbours"]) {
      const options = { context, k: 10, ...(source ? { source } : {}) };
      const s = new edgerec.UserState();
      try {
        // A user with a short past: finished titles never come back.
        for (const [i, id] of [50, 172, 181].entries()) s.recordCompletion(id, context.timestamp - 86_400 * (3 - i));
        const first = rec.recommendRow(s, options).items.map((r) => r.itemId);
        assert.equal(first.length, 10, `${source}: a full row`);
        assert.ok(!first.some((id) => [50, 172, 181].includes(id)), `${source}: a finished title came back`);
        // Shown three times without a play (the bundle's fatigue threshold): gone.
        for (const hours of [3, 2, 1]) s.recordImpressions(first.slice(0, 4), context.timestamp - hours * 3600);
        const tired = rec.recommendRow(s, options).items.map((r) => r.itemId);
        assert.ok(!tired.some((id) => first.slice(0, 4).includes(id)), `${source}: a fatigued title came back`);
        // Every MovieLens title is rated PG-13: a PG profile gets nothing.
        s.setMaturityLimit("PG");
        assert.deepEqual(rec.recommendRow(s, options).items, [], `${source}: a too-mature title came back`);
      } finally {
        s.free();
      }
    }
  });

  test("the user state records, round-trips through bytes and refuses corrupt blobs", async (t) => {
    const { fixture, edgerec, rec } = await ready();
    const state = new edgerec.UserState();
    const t0 = 893_286_638;
    state.recordPlay(50, t0, 0.3, 600, "tv");
    state.recordPlay(50, t0 + 1200, 0.95, 5400, "tv"); // same session: updates the play
    state.recordCompletion(172, t0 + 9000);
    state.recordPlay(181, t0 + 90_000, 0.05);
    state.recordImpressions([1, 2, 50], t0 + 100);
    state.recordImpressions([1, 2], t0 + 200);
    state.setOnboarding(["Comedy"], [1]);
    state.setMaturityLimit("PG-13");
    state.setUtcOffsetMinutes(-300);
    assert.deepEqual(Array.from(state.history()), [50, 172, 181]);
    assert.deepEqual(Array.from(state.finishedTitles()), [172, 50]);
    assert.deepEqual(Array.from(state.fatiguedTitles(2)), [1, 2]); // 50 was played after its showing
    assert.equal(state.playCount, 3);
    assert.equal(state.impressionCount, 5);
    assert.equal(state.maturityLimit, "PG-13");

    const bytes = state.toBytes();
    assert.ok(bytes instanceof Uint8Array && bytes.length > 48);
    const back = edgerec.UserState.fromBytes(bytes);
    assert.deepEqual(Array.from(back.toBytes()), Array.from(bytes), "export(import(b)) == b");
    assert.deepEqual(back.onboardingGenres(), ["Comedy"]);
    assert.equal(back.utcOffsetMinutes, -300);
    // The state feeds recommendRow(): nothing finished comes back, the maturity limit holds
    // (every MovieLens title is PG-13).
    const row = rec.recommendRow(back, { context: fixture.requests[0].options.context, k: 10 }).items;
    assert.equal(row.length, 10);
    assert.ok(row.every((r) => ![50, 172].includes(r.itemId)));

    const flipped = bytes.slice();
    flipped[bytes.length - 1] ^= 1;
    const newer = bytes.slice();
    newer[4] = 99;
    const cases = {
      truncated: [bytes.slice(0, bytes.length - 1), "corrupt_state"],
      "bit flip in the payload": [flipped, "corrupt_state"],
      "wrong magic": [new Uint8Array([1, 2, 3, 4, ...bytes.slice(4)]), "corrupt_state"],
      "newer version": [newer, "unsupported_state_version"],
      empty: [new Uint8Array(0), "corrupt_state"],
    };
    for (const [name, [blob, code]] of Object.entries(cases)) {
      await t.test(name, () => assertErrorCode(errorOf(() => edgerec.UserState.fromBytes(blob)), code, name));
    }
    const invalid = {
      "fraction above 1": () => state.recordPlay(1, t0, 1.5),
      "fractional timestamp": () => state.recordPlay(1, 1.5, 0.5),
      "unknown device": () => state.recordPlay(1, t0, 0.5, 0, "toaster"),
      "unknown maturity": () => state.setMaturityLimit("X"),
      "item ids not numbers": () => state.recordImpressions(["a"], t0),
      // Integers are validated, never coerced (wasm-bindgen's u32 turns -1 into 4294967295).
      "negative item id": () => state.recordPlay(-1, t0, 0.5),
      "item id past 2^32": () => state.recordPlay(2 ** 32 + 60, t0, 0.5),
      "fractional item id": () => state.recordCompletion(1.5, t0),
      "negative item id in a list": () => state.recordImpressions([-1], t0),
      "millisecond timestamp": () => state.recordPlay(1, t0 * 1000, 0.5),
      "millisecond completion": () => state.recordCompletion(1, Date.now()),
      "millisecond impressions": () => state.recordImpressions([1], Date.now()),
      "time before 1800": () => state.recordPlay(1, -6e9, 0.5),
      "watched milliseconds": () => state.recordPlay(1, t0, 0.5, 5_400_000),
      "negative watched seconds": () => state.recordPlay(1, t0, 0.5, -1),
      "NaN fraction": () => state.recordPlay(1, t0, NaN),
      "fractional UTC offset": () => state.setUtcOffsetMinutes(1.5),
      "UTC offset past 2^31": () => state.setUtcOffsetMinutes(2 ** 32 - 300),
      "negative minShown": () => state.fatiguedTitles(-1),
      "millisecond context": () => rec.recommendRow(state, { context: { device: "tv", timestamp: Date.now() } }),
    };
    for (const [name, call] of Object.entries(invalid)) {
      await t.test(name, () => assertErrorCode(errorOf(call), "invalid_argument", name));
    }
    await t.test("millisecond errors say so", () => {
      const err = errorOf(() => state.recordPlay(1, t0 * 1000, 0.5));
      assert.match(err.message, /milliseconds/);
    });
    assert.equal(state.playCount, 3, "refused calls change nothing");
    assert.equal(state.impressionCount, 5, "refused calls change nothing");
    assert.equal(state.utcOffsetMinutes, -300, "refused calls change nothing");
    const fresh = new edgerec.UserState();
    assert.equal(fresh.maturityLimit, null, "no limit is null, as typed");
    fresh.free();
    state.free();
    back.free();
  });
});
