// Model sync in headless Chromium: the web build, the IndexedDB store, `edgerec serve` on
// loopback. A page installs the channel's release, a reloaded page opens it from IndexedDB
// with the server unreachable, and a later sync after a publish downloads only new sections.
//
//   node --test tests/js/sync-browser.test.mjs
//
// Needs the CLI ($EDGEREC_BIN), scripts/build-wasm.sh and Debian's chromium ($CHROMIUM).

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { REPO, TINY_BUNDLE, launchChromium, requireCli, requirePackageBuild, runCli, serveStore } from "./fixtures.mjs";

requirePackageBuild();
requireCli();

describe("model sync in headless Chromium (IndexedDB store)", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgerec-sync-web-"));
  const store = join(dir, "store");
  const key = join(dir, "release");
  let server;
  let url;
  let browser;
  let trust;
  const publish = () => JSON.parse(runCli("publish", "--bundle", TINY_BUNDLE, "--key", `${key}.key`, "--store", store));

  before(async () => {
    trust = runCli("keys", "generate", "--out", key).trim();
    publish();
    // The repository as the static root: /js/sync-web.mjs and /pkg/web/edgerec.js as the
    // package lays them out.
    server = await serveStore(store, ["--www", REPO]);
    url = server.url;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    server?.close();
  });

  /** Opens the model in a page; `server` is the URL the client syncs from. */
  async function openIn(page, server) {
    return page.evaluate(
      async ({ server, trust }) => {
        const { Model, IndexedDbStore } = await import("/js/sync-web.mjs");
        const model = await Model.open({ url: server, publicKey: trust, store: new IndexedDbStore("t"), timeoutS: 2 });
        const result = await model.sync();
        const out = {
          version: model.status.version,
          error: model.status.lastError?.code ?? null,
          items: model.recommender?.itemCount ?? 0,
          stamped: model.recommender?.release()?.version ?? null,
          downloaded: result.downloadedBytes,
        };
        model.close();
        return out;
      },
      { server, trust },
    );
  }

  test("installs, reopens offline after a reload, then syncs only what changed", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${url}/v1/health`);
    const first = await openIn(page, url);
    assert.deepEqual([first.version, first.stamped, first.error], [1, 1, null]);
    assert.ok(first.items > 0);

    await page.reload();
    const offline = await openIn(page, "http://127.0.0.1:9");
    assert.equal(offline.version, 1);
    assert.equal(offline.error, "network");
    assert.ok(offline.items > 0);

    const next = publish();
    const synced = await openIn(page, url);
    assert.equal(synced.version, 2);
    assert.equal(synced.downloaded, next.manifest_bytes + next.delta_bytes);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
