// The event queue (node build, file store) against the real server (`edgerec serve --events`,
// SQLite on loopback): privacy levels checked on every request body, a bounded queue for a
// client offline for days, retries after lost answers counted once, persistence and ids.
//
//   node --test tests/js/events.test.mjs
//
// Needs the CLI ($EDGEREC_BIN) and scripts/build-wasm.sh.

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { requireCli, requirePackageBuild, runCli, serveStore } from "./fixtures.mjs";

requirePackageBuild();
requireCli();
const edgerec = (await import("../../pkg/node/edgerec.js")).default;
const { EventQueue, FileQueueStore, MemoryQueueStore, assignArm } = await import("../../js/events-node.mjs");

const NOW = Math.floor(Date.now() / 1000);
const dir = mkdtempSync(join(tmpdir(), "edgerec-events-"));
const db = join(dir, "events.sqlite");
let server;

before(async () => {
  server = await serveStore(join(dir, "store"), ["--events", db]);
});
after(() => server?.close());

const stats = () => JSON.parse(runCli("events", "stats", "--db", db));

/** A fetch that records every request body, optionally failing or losing answers. */
function recordingFetch() {
  const f = async (url, init) => {
    f.bodies.push(init.body);
    if (f.mode === "down") throw new TypeError("fetch failed");
    return fetch(url, init);
  };
  f.bodies = [];
  f.mode = "pass";
  return f;
}

/** A day of watching, one session (events under 30 minutes apart): a row, a play started from
 *  it and watched to 95% in three reports, a search. Six events. */
async function day(queue, t, items = [11, 22, 33]) {
  await queue.record({ type: "impression", rowId: `r${t}`, items, device: "tv", clientTime: t });
  await queue.record({ type: "play_start", itemId: items[1], rowId: `r${t}`, position: 1, device: "tv", clientTime: t + 5 });
  await queue.record({ type: "play_progress", itemId: items[1], watchedS: 900, fraction: 0.3, clientTime: t + 905 });
  await queue.record({ type: "play_progress", itemId: items[1], watchedS: 1800, fraction: 0.6, clientTime: t + 1805 });
  await queue.record({ type: "play_stop", itemId: items[1], watchedS: 2700, fraction: 0.95, clientTime: t + 2705 });
  await queue.record({ type: "search", tokens: ["noir"], clientTime: t + 2800 });
}

describe("event queue", () => {
  test("full: events reach the server once and update the state at once", async () => {
    const state = new edgerec.UserState();
    const f = recordingFetch();
    const queue = await EventQueue.open({ url: server.url, deviceId: "full-1", privacy: "full", state, store: new MemoryQueueStore(), fetch: f, arm: "rank.control" });
    await day(queue, NOW - 4000);
    assert.equal(state.impressionCount, 3);
    assert.equal(state.playCount, 1);
    assert.equal(queue.stats.queued, 6);
    const s = await queue.flush();
    assert.equal(s.sent, 6);
    assert.equal(s.queued, 0);
    const body = JSON.parse(f.bodies[0]);
    assert.equal(body.privacy, "full");
    assert.equal(body.events[0].arm, "rank.control");
    assert.deepEqual(body.events[0].items, [11, 22, 33]);
    assert.equal(stats().events, 6);
  });

  test("none: nothing leaves the device, the state still reacts", async () => {
    const state = new edgerec.UserState();
    const f = recordingFetch();
    const queue = await EventQueue.open({ url: server.url, deviceId: "none-1", privacy: "none", state, store: new MemoryQueueStore(), fetch: f });
    await day(queue, NOW - 4000);
    await queue.flush({ force: true });
    assert.equal(state.playCount, 1);
    assert.equal(queue.stats.queued, 0);
    assert.deepEqual(f.bodies, []);
  });

  test("metrics: bodies carry session counts only, never a title id, a search or the state", async () => {
    const state = new edgerec.UserState();
    const f = recordingFetch();
    const store = new MemoryQueueStore();
    const queue = await EventQueue.open({ url: server.url, deviceId: "metrics-1", privacy: "metrics", state, store, fetch: f, arm: "rank.gbdt" });
    await day(queue, NOW - 90_000, [101, 202, 303]);
    await day(queue, NOW - 4000, [404, 505, 606]);
    await queue.flush();
    // The open session (the last hour's) is kept to be sent again as it grows; the closed one left.
    assert.equal(queue.stats.queued, 6);
    await queue.record({ type: "impression", rowId: "late", items: [707], device: "tv", clientTime: NOW - 1000 });
    await queue.flush({ force: true });
    const allowed = new Set(["sessionId", "started", "modelVersion", "arm", "rowsShown", "playsStarted", "playsFromRow", "videosWatched", "watchSeconds"]);
    for (const raw of f.bodies) {
      const body = JSON.parse(raw);
      assert.deepEqual(Object.keys(body).sort(), ["deviceId", "privacy", "schema", "sessions"]);
      assert.equal(body.privacy, "metrics");
      for (const s of body.sessions) {
        for (const [k, v] of Object.entries(s)) {
          assert.ok(allowed.has(k), `${k} in a metrics body`);
          assert.ok(typeof v === "number" || k === "modelVersion" || k === "arm", `${k}: ${v}`);
        }
      }
      assert.ok(!raw.includes("noir"), "search text sent");
    }
    const last = JSON.parse(f.bodies.at(-1)).sessions.at(-1);
    assert.deepEqual([last.rowsShown, last.playsFromRow, last.videosWatched, last.watchSeconds], [2, 1, 1, 2700]);
    assert.equal(stats().sessions, 2, "the grown session counted once");
  });

  test("offline for days: a bounded queue that drains on reconnect, with backoff", async () => {
    const state = new edgerec.UserState();
    const f = recordingFetch();
    f.mode = "down";
    const path = join(dir, "offline", "queue.json");
    let queue = await EventQueue.open({ url: server.url, deviceId: "offline-1", privacy: "full", state, store: new FileQueueStore(path), fetch: f, maxEvents: 60, random: () => 0.5, backoff: { baseMs: 60_000, maxMs: 600_000 } });
    for (let d = 0; d < 40; d++) await day(queue, NOW - (40 - d) * 86_400 / 10);
    assert.equal(queue.stats.queued, 60);
    assert.equal(queue.stats.dropped, 180);
    await queue.flush({ force: true });
    await queue.flush({ force: true });
    assert.equal(queue.stats.failures, 2);
    assert.ok(queue.retryInS >= 0);
    const early = f.bodies.length;
    await queue.flush(); // inside the backoff: no request
    assert.equal(f.bodies.length, early);
    // The app restarts: the queue comes back from its file.
    queue = await EventQueue.open({ url: server.url, deviceId: "offline-1", privacy: "full", state, store: new FileQueueStore(path), fetch: f, maxEvents: 60, batchSize: 25 });
    assert.equal(queue.stats.queued, 60);
    assert.equal(queue.stats.dropped, 180);
    f.mode = "pass";
    const s = await queue.flush({ force: true });
    assert.equal(s.queued, 0);
    assert.equal(s.sent, 60);
  });

  test("an answer lost on the way back: the retry is counted once", async () => {
    // A proxy that forwards the request to the server, then drops the connection.
    let lose = true;
    const proxy = createServer((req, res) => {
      const up = httpRequest(`${server.url}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
        if (lose) {
          r.resume();
          r.on("end", () => req.socket.destroy());
          return;
        }
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${proxy.address().port}`;
    const before = stats().events;
    const queue = await EventQueue.open({ url, deviceId: "lossy-1", privacy: "full", state: new edgerec.UserState(), store: new MemoryQueueStore() });
    await day(queue, NOW - 5000);
    let s = await queue.flush();
    assert.equal(s.failures, 1);
    assert.equal(s.queued, 6, "unacknowledged events stay queued");
    lose = false;
    s = await queue.flush({ force: true });
    assert.deepEqual([s.sent, s.duplicates, s.queued], [0, 6, 0]);
    assert.equal(stats().events, before + 6);
    proxy.close();
  });

  test("ids: an event recorded twice is queued once; bad events are refused before the state", async () => {
    const state = new edgerec.UserState();
    const queue = await EventQueue.open({ url: server.url, deviceId: "ids-1", privacy: "full", state, store: new MemoryQueueStore() });
    await queue.record({ id: "same", type: "impression", rowId: "r", items: [1], device: "tv" });
    await queue.record({ id: "same", type: "impression", rowId: "r", items: [1], device: "tv" });
    assert.equal(queue.stats.queued, 1);
    await assert.rejects(
      queue.record({ type: "play_stop", itemId: 1, watchedS: 10, fraction: 2 }),
      (e) => e.code === "invalid_argument" && /fraction/.test(e.message),
    );
    assert.equal(queue.stats.queued, 1);
    assert.throws(() => new EventQueue({ url: server.url, deviceId: "x", privacy: "everything", state }), /privacy/);
  });

  test("A/B arms: the same assignment as the native core", () => {
    const experiment = {
      schema: "edgerec-experiments/1",
      name: "rank",
      salt: "s1",
      arms: [
        { name: "a0", share: 0.5, channel: "c0" },
        { name: "a1", share: 0.5, channel: "c1" },
      ],
    };
    // Pinned in src/experiments.rs (the_hash_is_pinned).
    assert.deepEqual(assignArm(experiment, "device-1"), { experiment: "rank", arm: "a1", channel: "c1", label: "rank.a1" });
    const counts = { a0: 0, a1: 0 };
    for (let d = 0; d < 2000; d++) counts[assignArm(experiment, `d${d}`).arm] += 1;
    assert.ok(Math.abs(counts.a0 - 1000) < 150, JSON.stringify(counts));
    assert.throws(() => assignArm({ ...experiment, arms: [{ name: "a0", share: 0.4, channel: "c0" }] }, "d"), /share/);
  });
});
