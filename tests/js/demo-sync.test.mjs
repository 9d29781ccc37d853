// The demo page (www/) keeping its model current through the signed sync client, in headless
// Chromium. Served by `edgerec serve --www www --pkg pkg/web --js js --models DIR` against a
// store holding the tiny bundle and opened with ?key=TRUST_ROOT, the page installs the release
// into IndexedDB, shows version 1 in its "Model source" panel, swaps to version 2 when a
// publish lands (polling), and reopens it from IndexedDB after a reload. Without a release to
// install it loads the bundle file, says so, and switches once one is published; served by
// scripts/serve.mjs without ?key= it is the old page: the bundle file, no console errors.
//
//   node --test tests/js/demo-sync.test.mjs
//
// Needs the CLI ($EDGEREC_BIN), scripts/build-wasm.sh and Debian's chromium ($CHROMIUM); not the
// MovieLens artifacts (browser.test.mjs covers the page with those).

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { startServer } from "../../scripts/serve.mjs";
import { REPO, TINY_BUNDLE, launchChromium, requireCli, requirePackageBuild, runCli, serveStore } from "./fixtures.mjs";


describe("the demo page's model through signed sync (headless Chromium)", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgerec-demo-sync-"));
  const store = join(dir, "store");
  const models = join(dir, "models");
  const key = join(dir, "release");
  let trust;
  let release; // edgerec serve: the API, the page, /pkg/, /js/, /models/
  let files; // scripts/serve.mjs: the page and /models/, no API
  let browser;
  const publish = (label, channel = "stable") =>
    JSON.parse(
      runCli("publish", "--bundle", TINY_BUNDLE, "--key", `${key}.key`, "--store", store, "--label", label, "--channel", channel),
    );

  before(async () => {
    requirePackageBuild();
    requireCli();
    trust = runCli("keys", "generate", "--out", key).trim();
    publish("demo-1");
    // The bundle file the page falls back to.
    mkdirSync(models);
    copyFileSync(TINY_BUNDLE, join(models, "bundle.edgerec"));
    release = await serveStore(store, [
      "--www", join(REPO, "www"),
      "--pkg", join(REPO, "pkg/web"),
      "--js", join(REPO, "js"),
      "--models", models,
    ]);
    files = await startServer({ port: 0, models });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    release?.close();
    await files?.close();
  });

  /** A page in a fresh context (its own IndexedDB) recording console errors and requests. */
  async function newPage() {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    const requests = [];
    page.on("console", (msg) => msg.type() === "error" && errors.push(`console: ${msg.text()} (${msg.location().url})`));
    page.on("pageerror", (err) => errors.push(`uncaught: ${err.message}`));
    page.on("request", (req) => requests.push(new URL(req.url()).pathname));
    return { context, page, errors, requests };
  }

  const text = (page, id) => page.locator(`#${id}`).textContent();
  const cardCount = (page) => page.locator("#recs .card").count();

  test("served by edgerec serve with ?key=, the page installs the release, swaps in the next one and reopens it offline-first", async () => {
    const { context, page, errors, requests } = await newPage();
    await page.goto(`${release.url}/?key=${trust}&poll=1`);
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    await page.waitForSelector("#sync[data-mode='sync'][data-version='1']", { timeout: 10_000 });
    assert.equal(await text(page, "sync-version"), "1");
    assert.equal(await text(page, "sync-label"), "demo-1");
    assert.match(await text(page, "sync-mode"), /Signed release from this server, channel stable/);
    assert.equal(await text(page, "sync-refused"), "none");
    assert.equal(await text(page, "sync-error"), "none");
    assert.match(await text(page, "sync-stale"), /^no, expires /);
    assert.notEqual(await text(page, "sync-last-success"), "—");
    assert.ok((await cardCount(page)) > 0, "a row from the synced model");
    assert.match(await text(page, "item-count"), /^[1-9]\d*$/);
    assert.ok(requests.some((p) => p === "/v1/channels/stable/manifest"), "the manifest was fetched");
    assert.ok(requests.some((p) => p.startsWith("/v1/sections/")), "the sections were downloaded");
    assert.ok(!requests.includes("/models/bundle.edgerec"), "the bundle file was not used");
    assert.ok(requests.includes("/js/sync-web.mjs") && requests.includes("/pkg/web/edgerec.js"));
    assert.ok(!requests.includes("/pkg/edgerec.js"), "one instance of the package: /pkg/web/edgerec.js");

    // The user's state survives the swap: a watched title stays out of the new model's row.
    const watched = await page.locator("#recs .card .title").first().textContent();
    await page.locator("#search").fill(watched);
    await page.locator("#search").press("Enter");

    // A publish: the page's polling installs it and re-renders the row from the new model.
    publish("demo-2");
    await page.waitForSelector("#sync[data-version='2']", { timeout: 15_000 });
    await page.waitForFunction(() => document.getElementById("sync-label").textContent === "demo-2");
    assert.equal(await page.locator("#recs").getAttribute("data-state"), "ready");
    assert.ok(await page.locator("#error").isHidden(), "no error banner after the swap");
    assert.deepEqual(await page.locator("#history li span").allTextContents(), [watched]);
    const titles = await page.locator("#recs .card .title").allTextContents();
    assert.ok(titles.length > 0 && !titles.includes(watched), "the new model's row, without the watched title");
    assert.deepEqual(errors, []);

    // A reload opens the installed release from IndexedDB: no section is downloaded again.
    const before = requests.length;
    await page.reload();
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    await page.waitForSelector("#sync[data-mode='sync'][data-version='2']", { timeout: 10_000 });
    const after = requests.slice(before);
    assert.ok(!after.some((p) => p.startsWith("/v1/sections/")), `sections fetched again: ${after.join(", ")}`);
    assert.ok(!after.includes("/models/bundle.edgerec"));
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("with nothing published on its channel the page loads the bundle file, says why, and switches when a release lands", async () => {
    const { context, page, errors } = await newPage();
    await page.goto(`${release.url}/?key=${trust}&channel=beta&poll=1`);
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    await page.waitForSelector("#sync[data-mode='file']", { timeout: 10_000 });
    assert.match(await text(page, "sync-mode"), /Bundle file \/models\/bundle\.edgerec, fetched once \(http_error: .*404/);
    assert.match(await text(page, "sync-mode"), /Still checking channel beta/);
    assert.equal(await text(page, "sync-version"), "none installed");
    assert.match(await text(page, "sync-error"), /^http_error/);
    assert.ok((await cardCount(page)) > 0, "a row from the bundle file");
    // The only console errors: the browser's own lines for the 404 manifest answers.
    assert.deepEqual(
      errors.filter((e) => !/status of 404/.test(e) || !e.includes("/v1/channels/beta/manifest")),
      [],
    );

    publish("beta-1", "beta");
    await page.locator("#sync-now").click();
    await page.waitForSelector("#sync[data-mode='sync'][data-version='1']", { timeout: 15_000 });
    assert.equal(await text(page, "sync-label"), "beta-1");
    assert.equal(await text(page, "sync-error"), "none");
    assert.match(await text(page, "sync-mode"), /channel beta/);
    assert.ok((await cardCount(page)) > 0);
    assert.ok(await page.locator("#error").isHidden());
    await context.close();
  });

  test("a refused release (the wrong trust root) leaves the page on the bundle file with the refusal shown", async () => {
    const { context, page } = await newPage();
    const other = runCli("keys", "generate", "--out", join(dir, "other")).trim();
    await page.goto(`${release.url}/?key=${other}&poll=1`);
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    await page.waitForSelector("#sync[data-mode='file']", { timeout: 10_000 });
    const refused = await text(page, "sync-refused");
    assert.match(refused, /^(bad_signature|untrusted_key): /);
    assert.match(await text(page, "sync-mode"), /Bundle file/);
    assert.ok((await cardCount(page)) > 0);
    await context.close();
  });

  test("served by scripts/serve.mjs without ?key=, the page loads the bundle file as before", async () => {
    const { context, page, errors, requests } = await newPage();
    await page.goto(files.url);
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    assert.equal(await page.locator("#sync").getAttribute("data-mode"), "file");
    assert.match(await text(page, "sync-mode"), /Bundle file \/models\/bundle\.edgerec, fetched once \(no \?key=/);
    assert.ok(await page.locator("#sync-status").isHidden());
    assert.ok(await page.locator("#sync-now").isHidden());
    assert.ok((await cardCount(page)) > 0);
    assert.ok(!requests.some((p) => p.startsWith("/v1/") || p.startsWith("/js/")), "no sync attempted");
    assert.deepEqual(errors, []);
    await context.close();
  });
});
