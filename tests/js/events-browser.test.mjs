// The event queue in headless Chromium: the web build, the IndexedDB queue store, `edgerec
// serve --events` on loopback. Events recorded while the server is unreachable survive a page
// reload, and hiding the page flushes them with a keepalive request.
//
//   node --test tests/js/events-browser.test.mjs
//
// Needs the CLI ($EDGEREC_BIN), scripts/build-wasm.sh and Debian's chromium ($CHROMIUM).

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { REPO, launchChromium, requireCli, requirePackageBuild, runCli, serveStore } from "./fixtures.mjs";

requirePackageBuild();
requireCli();

describe("event queue in headless Chromium (IndexedDB store, flush on hide)", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgerec-events-web-"));
  const db = join(dir, "events.sqlite");
  let server;
  let browser;

  before(async () => {
    // The repository as the static root: /js/events-web.mjs and /pkg/web/edgerec.js as the
    // package lays them out.
    server = await serveStore(join(dir, "store"), ["--www", REPO, "--events", db]);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    server?.close();
  });

  /** Opens the queue in the page against `url`; records a session when `record` is set. */
  const open = (page, url, record) =>
    page.evaluate(
      async ({ url, record }) => {
        const { EventQueue, IndexedDbQueueStore, flushOnHide, ready } = await import("/js/events-web.mjs");
        const { UserState } = await ready();
        const state = new UserState();
        const queue = await EventQueue.open({ url, deviceId: "browser-1", privacy: "full", state, store: new IndexedDbQueueStore("q") });
        globalThis.queue = queue;
        flushOnHide(queue);
        if (record) {
          const t = Math.floor(Date.now() / 1000) - 600;
          await queue.record({ type: "impression", rowId: "r1", items: [3, 4, 5], device: "desktop", clientTime: t });
          await queue.record({ type: "play_start", itemId: 4, rowId: "r1", position: 1, device: "desktop", clientTime: t + 5 });
          await queue.record({ type: "play_stop", itemId: 4, watchedS: 300, fraction: 0.05, clientTime: t + 305 });
          await queue.flush({ force: true }); // the server is unreachable: stays queued
        }
        return { ...queue.stats, impressions: state.impressionCount };
      },
      { url, record },
    );

  test("events survive a reload offline and leave with the page's keepalive flush", async () => {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${server.url}/v1/health`);
    const offline = await open(page, "http://127.0.0.1:9", true);
    assert.deepEqual([offline.queued, offline.failures, offline.impressions], [3, 1, 3]);

    await page.reload();
    const back = await open(page, server.url, false);
    assert.equal(back.queued, 3, "the queue comes back from IndexedDB");
    const after = await page.evaluate(async () => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      document.dispatchEvent(new Event("visibilitychange"));
      for (let i = 0; i < 100 && globalThis.queue.stats.queued > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      return globalThis.queue.stats;
    });
    assert.deepEqual([after.queued, after.sent], [0, 3]);
    assert.equal(JSON.parse(runCli("events", "stats", "--db", db)).events, 3);
    assert.deepEqual(errors, []);
  });
});
