// `edgerec/worker` in headless Chromium: the ranked MovieLens bundle published and synced by
// `edgerec serve`, loaded and run in a Web Worker. Every parity user's row equals the native
// CLI's, the page's main thread has no long task (> 50 ms) meanwhile, while the same work on the
// main thread does (so the measurement can fail); a later publish reaches the worker by sync().
// Then the synthetic 20,000-title bundle ($EDGEREC_ARTIFACTS/device-20k, written by
// `examples/device_bench.rs --bundle-only`): loaded into the worker and served there with the
// main thread free, its rows equal to the native ones.
//
//   node --test tests/js/worker-browser.test.mjs
//
// Needs the CLI ($EDGEREC_BIN), scripts/build-wasm.sh, the device parity fixture
// (scripts/artifacts.sh) and Debian's chromium ($CHROMIUM).

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  ARTIFACTS,
  REPO,
  TINY_BUNDLE,
  assertDeviceParity,
  launchChromium,
  loadDeviceFixture,
  requireCli,
  requireFile,
  requirePackageBuild,
  runCli,
  serveStore,
} from "./fixtures.mjs";

/**
 * Runs in the page: watches the main thread (long tasks, and the largest gap between 10 ms
 * timer ticks) while `work` runs; returns `{ value, longestTaskMs, longTasks, maxGapMs }`.
 */
const WATCH = `async (work) => {
  const tasks = [];
  const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries().map((e) => e.duration)));
  observer.observe({ type: "longtask" });
  let last = performance.now();
  let maxGapMs = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, 10);
  try {
    const value = await work();
    // Long-task entries are delivered after the task: let them arrive.
    await new Promise((r) => setTimeout(r, 100));
    return { value, longestTaskMs: Math.max(0, ...tasks), longTasks: tasks.length, maxGapMs };
  } finally {
    clearInterval(tick);
    observer.disconnect();
  }
}`;

describe("edgerec/worker in headless Chromium", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgerec-worker-"));
  const store = join(dir, "store");
  const key = join(dir, "release");
  let device;
  let server;
  let browser;
  let trust;
  const publish = (bundle, label) =>
    JSON.parse(runCli("publish", "--bundle", bundle, "--key", `${key}.key`, "--store", store, "--label", label));

  before(async () => {
    requirePackageBuild();
    requireCli();
    device = loadDeviceFixture();
    trust = runCli("keys", "generate", "--out", key).trim();
    publish(device.bundlePath, "ranked");
    // The repository as the static root: /js/ and /pkg/web/ as the package lays them out.
    server = await serveStore(store, ["--www", REPO]);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    server?.close();
  });

  async function newPage() {
    const page = await browser.newPage();
    const errors = [];
    page.on("console", (msg) => msg.type() === "error" && errors.push(`console: ${msg.text()}`));
    page.on("pageerror", (err) => errors.push(`uncaught: ${err.message}`));
    await page.route((url) => url.pathname === "/test/device.edgerec", (route) =>
      route.fulfill({ body: Buffer.from(device.bundle), contentType: "application/octet-stream" }),
    );
    await page.goto(`${server.url}/v1/health`);
    return { page, errors };
  }

  test("syncs and serves the parity rows off the main thread, which never blocks", async () => {
    const { page, errors } = await newPage();
    const inWorker = await page.evaluate(
      async ({ url, trust, requests, watch }) => {
        const { EdgerecWorker } = await import("/js/worker-client.mjs");
        const { fromHex } = await import("/www/parity.js");
        const worker = EdgerecWorker.start();
        const measured = await eval(watch)(async () => {
          const status = await worker.open({ url, publicKey: trust, store: { indexedDb: "worker-test" } });
          const rows = {};
          for (const req of requests) {
            const state = await worker.newState(fromHex(req.state));
            const row = await worker.recommendRow(state, req.options);
            await state.free();
            rows[req.userId] = {
              ids: row.items.map((r) => r.itemId),
              reasons: row.items.map((r) => r.reason),
              scores: row.items.map((r) => r.score),
              ranked: row.ranked,
            };
          }
          return { status, rows, info: await worker.info() };
        });
        await worker.terminate();
        return measured;
      },
      { url: server.url, trust, requests: device.requests, watch: WATCH },
    );
    const { status, rows, info } = inWorker.value;
    assert.equal(status.version, 1);
    assert.equal(status.lastError, null);
    assert.equal(info.release.version, 1);
    assert.equal(info.itemCount > 0, true);
    assert.equal(assertDeviceParity(rows, device), device.requests.length, "every row went through the ranker");

    // The same load and rows on the main thread: the watch sees them block it.
    const onMain = await page.evaluate(
      async ({ bundleUrl, requests, watch }) => {
        const { default: init, Recommender, UserState } = await import("/pkg/web/edgerec.js");
        const { deviceRows } = await import("/www/parity.js");
        await init();
        const bytes = new Uint8Array(await (await fetch(bundleUrl)).arrayBuffer());
        return eval(watch)(async () => {
          const rec = new Recommender(bytes);
          try {
            return Object.keys(deviceRows(rec, UserState, requests)).length;
          } finally {
            rec.free();
          }
        });
      },
      { bundleUrl: "/test/device.edgerec", requests: device.requests, watch: WATCH },
    );
    console.log(
      `main thread while ${device.requests.length} rows are computed: in the worker longest task ` +
        `${inWorker.longestTaskMs.toFixed(0)} ms (${inWorker.longTasks} long tasks, largest timer gap ` +
        `${inWorker.maxGapMs.toFixed(0)} ms); on the main thread ${onMain.longestTaskMs?.toFixed(0)} ms ` +
        `(largest timer gap ${onMain.maxGapMs?.toFixed(0)} ms)`,
    );
    assert.equal(inWorker.longTasks, 0, `the main thread had a ${inWorker.longestTaskMs} ms task`);
    assert.ok(onMain.longTasks > 0, `the watch saw no long task with the work on the main thread: ${JSON.stringify(onMain)}`);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("errors carry the core's codes; a publish reaches the worker by sync()", async () => {
    const { page, errors } = await newPage();
    const otherKey = runCli("keys", "generate", "--out", join(dir, "other")).trim();
    const got = await page.evaluate(
      async ({ url, trust, otherKey }) => {
        const { EdgerecWorker } = await import("/js/worker-client.mjs");
        const events = [];
        const worker = EdgerecWorker.start({ onEvent: (e) => events.push(e.type) });
        const codeOf = (promise) => promise.then(() => null, (e) => `${e.name}:${e.code}`);
        const out = {
          noModel: await codeOf(worker.recommendRow({ handle: 1 }, { context: { device: "tv", timestamp: 0 } })),
          badBundle: await codeOf(worker.load(new Uint8Array([1, 2, 3]))),
          badStore: await codeOf(worker.open({ url, publicKey: trust, store: "disk" })),
        };
        // A release signed by a key the client does not trust: refused, nothing serves.
        out.refused = (await worker.open({ url, publicKey: otherKey })).lastError?.code;
        out.noModelAfterRefusal = await codeOf(worker.info());
        out.status = await worker.open({ url, publicKey: trust });
        out.noState = await codeOf(worker.recommendRow({ handle: 99 }, { context: { device: "tv", timestamp: 0 } }));
        const state = await worker.newState();
        out.noMethod = await codeOf(worker.call("callState", state.handle, "free", []));
        await state.recordPlay(1, 893_000_000, 0.95, 6000, "tv");
        out.history = Array.from(await state.history());
        out.badRequest = await codeOf(worker.recommendRow(state, { context: { device: "toaster", timestamp: 0 } }));
        out.events = events;
        window.__worker = worker;
        window.__events = events;
        return out;
      },
      { url: server.url, trust, otherKey },
    );
    assert.equal(got.noModel, "EdgerecError:no_model");
    assert.equal(got.badBundle, "EdgerecError:bad_magic");
    assert.equal(got.badStore, "EdgerecError:invalid_argument");
    assert.equal(got.refused, "untrusted_key");
    assert.equal(got.noModelAfterRefusal, "EdgerecError:no_model");
    assert.equal(got.status.version, 1);
    assert.equal(got.noState, "EdgerecError:invalid_argument");
    assert.equal(got.noMethod, "EdgerecError:invalid_argument");
    assert.deepEqual(got.history, [1]);
    assert.equal(got.badRequest, "EdgerecError:invalid_argument");

    publish(TINY_BUNDLE, "tiny");
    const synced = await page.evaluate(async () => {
      const result = await window.__worker.sync();
      const info = await window.__worker.info();
      await window.__worker.terminate();
      return { result, info, events: window.__events };
    });
    assert.equal(synced.result.updated, true);
    assert.equal(synced.result.version, 2);
    assert.equal(synced.info.release.version, 2);
    assert.ok(synced.events.includes("installed"), JSON.stringify(synced.events));
    assert.deepEqual(errors, []);
    await page.close();
  });
  test("a 20,000-title bundle loads and serves in the worker; the main thread never blocks", async () => {
    const dir20k = join(ARTIFACTS, "device-20k");
    const howToMake = `run cargo run -p edgerec --example device_bench -- ${dir20k} --bundle-only`;
    const bundle = readFileSync(requireFile(join(dir20k, "bundle-20k.edgerec"), howToMake));
    const spec = JSON.parse(readFileSync(requireFile(join(dir20k, "states.json"), howToMake), "utf8"));
    const states = spec.states.slice(0, 40);
    assert.equal(states.length, 40);
    const { page, errors } = await newPage();
    await page.route((url) => url.pathname === "/test/20k.edgerec", (route) =>
      route.fulfill({ body: bundle, contentType: "application/octet-stream" }),
    );
    const measured = await page.evaluate(
      async ({ states, watch }) => {
        const { EdgerecWorker } = await import("/js/worker-client.mjs");
        const { fromHex } = await import("/www/parity.js");
        const bytes = new Uint8Array(await (await fetch("/test/20k.edgerec")).arrayBuffer());
        const worker = EdgerecWorker.start();
        const out = await eval(watch)(async () => {
          const t0 = performance.now();
          await worker.load(bytes, { transfer: true });
          const loadMs = performance.now() - t0;
          const rows = [];
          for (const s of states) {
            const state = await worker.newState(fromHex(s.state));
            const row = await worker.recommendRow(state, s.options);
            await state.free();
            rows.push(row.items.map((r) => r.itemId));
          }
          return { loadMs, rows, itemCount: (await worker.info()).itemCount };
        });
        await worker.terminate();
        return out;
      },
      { states, watch: WATCH },
    );
    const { loadMs, rows, itemCount } = measured.value;
    console.log(
      `main thread while the 20k-title bundle loads in the worker (${loadMs.toFixed(0)} ms) and ` +
        `${states.length} rows are computed: longest task ${measured.longestTaskMs.toFixed(0)} ms ` +
        `(${measured.longTasks} long tasks, largest timer gap ${measured.maxGapMs.toFixed(0)} ms)`,
    );
    assert.equal(itemCount, 20_000);
    states.forEach((s, i) => assert.deepEqual(rows[i], s.native, `state ${i}: the worker's row differs from the native one`));
    assert.equal(measured.longTasks, 0, `the main thread had a ${measured.longestTaskMs} ms task`);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
