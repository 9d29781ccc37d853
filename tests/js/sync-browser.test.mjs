// Model sync in headless Chromium: the web build, the IndexedDB store, `edgerec serve` on
// loopback. A page installs the channel's release, a reloaded page opens it from IndexedDB
// with the server unreachable, and a later sync after a publish downloads only new sections.
//
//   node --test tests/js/sync-browser.test.mjs
//
// Needs the CLI ($EDGEREC_BIN), scripts/build-wasm.sh and Debian's chromium ($CHROMIUM).

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { chromium } from "playwright-core";

import { REPO, requireFile, requirePackageBuild } from "./fixtures.mjs";

requirePackageBuild();
const BIN = requireFile(
  process.env.EDGEREC_BIN ?? join(process.env.HOME, ".cache/edgerec/target/debug/edgerec"),
  "build the CLI: source scripts/env.sh && cargo build -p edgerec-cli",
);
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TINY = join(REPO, "tests/data/tiny-v1-without-genv.edgerec");
const cli = (...args) => execFileSync(BIN, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

describe("model sync in headless Chromium (IndexedDB store)", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgerec-sync-web-"));
  const store = join(dir, "store");
  const key = join(dir, "release");
  let child;
  let url;
  let browser;
  let trust;
  const publish = () => JSON.parse(cli("publish", "--bundle", TINY, "--key", `${key}.key`, "--store", store));

  before(async () => {
    trust = cli("keys", "generate", "--out", key).trim();
    publish();
    // The repository as the static root: /js/sync-web.mjs and /pkg/web/edgerec.js as the
    // package lays them out.
    child = spawn(BIN, ["serve", "--store", store, "--www", REPO, "--port", "0", "--threads", "1"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    url = await new Promise((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        const m = out.match(/serving (http:\/\/[^ ]+?)\/? /);
        if (m) resolve(m[1]);
      });
      child.on("exit", (code) => reject(new Error(`edgerec serve exited with ${code}`)));
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
  });
  after(async () => {
    await browser?.close();
    child?.kill("SIGTERM");
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
