// The web build in headless Chromium: parity with the native CLI, refused bundles, and the demo
// page rendering a top-10 from the bundle file without console errors (its screenshot goes to
// $EDGEREC_ARTIFACTS/demo.png; the page's signed-sync path is tested by demo-sync.test.mjs).
//
//   node --test tests/js/browser.test.mjs
//
// Needs scripts/build-wasm.sh, the parity fixture (see fixtures.mjs) and Debian's chromium
// (override the binary with $CHROMIUM). Playwright only drives it: no browser is downloaded.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { startServer } from "../../scripts/serve.mjs";
import {
  ARTIFACTS,
  assertDeviceParity,
  assertErrorCode,
  assertRankerParity,
  corruptedBundles,
  launchChromium,
  loadDeviceFixture,
  loadFixture,
  loadRankerFixture,
  requirePackageBuild,
} from "./fixtures.mjs";

const BUNDLE_URL = "/models/bundle.edgerec";

describe("the web build in headless Chromium", () => {
  // Made once, by the first test to run. If it fails (no fixture, no build, no chromium),
  // every test fails with its message rather than being cancelled.
  let setup;
  const ready = () => (setup ??= prepare());
  async function prepare() {
    const fixture = loadFixture();
    requirePackageBuild();
    const server = await startServer({ port: 0, models: ARTIFACTS });
    // launch() gives every run a fresh temporary profile.
    const browser = await launchChromium().catch(async (err) => {
      await server.close();
      throw err;
    });
    const ranker = loadRankerFixture();
    const corrupted = corruptedBundles(fixture.bundle, ranker.bundles.logistic);
    return { fixture, ranker, corrupted, server, browser };
  }

  after(async () => {
    const made = await setup?.catch(() => null);
    await made?.browser.close();
    await made?.server.close();
  });

  /**
   * A new page at `path` that records console errors and uncaught exceptions, and serves the
   * corrupted bundles at /corrupt/0, /corrupt/1, … (in `corrupted` order).
   */
  async function openPage(path) {
    const { server, browser, corrupted, ranker } = await ready();
    const page = await browser.newPage();
    const errors = [];
    page.on("console", (msg) => msg.type() === "error" && errors.push(`console: ${msg.text()}`));
    page.on("pageerror", (err) => errors.push(`uncaught: ${err.message}`));
    await page.route((url) => url.pathname.startsWith("/corrupt/"), (route) => {
      const index = Number(new URL(route.request().url()).pathname.split("/").pop());
      return route.fulfill({ body: Buffer.from(corrupted[index].bytes), contentType: "application/octet-stream" });
    });
    await page.route((url) => url.pathname.startsWith("/ranker/"), (route) => {
      const name = new URL(route.request().url()).pathname.split("/").pop();
      return route.fulfill({ body: Buffer.from(ranker.bundles[name]), contentType: "application/octet-stream" });
    });
    await page.goto(new URL(path, server.url).href);
    return { page, errors };
  }

  /** The parity harness page, once its module has initialised the wasm (`flavour`: the build). */
  async function openHarness(flavour = "simd") {
    const opened = await openPage(flavour === "simd" ? "parity.html" : `parity.html?wasm=${flavour}`);
    await opened.page.waitForSelector("body[data-ready='1']", { timeout: 30_000 });
    assert.equal(await opened.page.evaluate(() => window.edgerecHarness.flavour), flavour);
    return opened;
  }

  // Both builds (SIMD, and the baseline for engines without it) give the native rows.
  for (const flavour of ["simd", "baseline"]) {
    test(`recommendRow in the page (${flavour} build) equals the native CLI for every parity user of the default bundle`, async () => {
      const { fixture } = await ready();
      const { page, errors } = await openHarness(flavour);
      const actual = await page.evaluate(([url, requests]) => window.edgerecHarness.deviceRows(url, requests), [
        BUNDLE_URL,
        fixture.requests,
      ]);
      const ranked = assertDeviceParity(actual, fixture);
      // Ranked exactly when `train`'s gate shipped a ranker: every row or none.
      assert.ok(ranked === 0 || ranked === fixture.requests.length, `${ranked} rows ranked`);
      assert.deepEqual(errors, []);
      await page.close();
    });

    test(`recommendRow in the page (${flavour} build) equals the native CLI for every parity user of the ranked bundle`, async () => {
      await ready();
      const device = loadDeviceFixture();
      const { page, errors } = await openHarness(flavour);
      const actual = await page.evaluate(([url, requests]) => window.edgerecHarness.deviceRows(url, requests), [
        "/models/device/bundle.edgerec",
        device.requests,
      ]);
      const ranked = assertDeviceParity(actual, device);
      assert.equal(ranked, device.requests.length, "every row went through the bundle's ranker");
      assert.deepEqual(errors, []);
      await page.close();
    });
  }

  test("the bundle's ranker scores in the page equal the trainer's", async (t) => {
    const { ranker } = await ready();
    const { page, errors } = await openHarness();
    for (const [name, want] of Object.entries(ranker.expected)) {
      await t.test(name, async () => {
        const got = await page.evaluate(([url, inputs]) => window.edgerecHarness.rankerScores(url, inputs), [
          `/ranker/${name}`,
          ranker.inputs,
        ]);
        assertRankerParity(got, want, name);
      });
    }
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("corrupted bundles are refused in the page with the right code", async (t) => {
    const { corrupted } = await ready();
    assert.equal(corrupted.length, 17, "every kind of damage, the device sections' included");
    const { page } = await openHarness();
    for (const [index, { name, code }] of corrupted.entries()) {
      await t.test(name, async () => {
        const thrown = await page.evaluate((url) => window.edgerecHarness.loadError(url), `/corrupt/${index}`);
        assertErrorCode(thrown, code, name);
      });
    }
    await page.close();
  });

  test("the demo page renders a top-10 row without console errors", async () => {
    const { page, errors } = await openPage("/");
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    const cards = page.locator("#recs .card");
    assert.equal(await cards.count(), 10);
    for (const field of ["rank", "title", "reason", "source", "score"]) {
      const text = await cards.first().locator(`.${field}`).textContent();
      assert.ok(text.trim() !== "", `the first card shows its ${field}`);
    }
    assert.match(await page.locator("#model-version").textContent(), /\S/);
    assert.match(await page.locator("#item-count").textContent(), /^[1-9]\d*$/);
    assert.match(await page.locator("#recommend-ms").textContent(), /^\d+(\.\d+)? ms$/);
    assert.ok(await page.locator("#error").isHidden(), "no error banner");
    // scripts/serve.mjs has no release API and the page no ?key=: the bundle file, said so
    // (the signed-sync path is demo-sync.test.mjs's).
    assert.equal(await page.locator("#sync").getAttribute("data-mode"), "file");
    assert.match(await page.locator("#sync-mode").textContent(), /^Bundle file \/models\/bundle\.edgerec/);
    assert.deepEqual(errors, []);
    await page.screenshot({ path: join(ARTIFACTS, "demo.png"), fullPage: true });
    await page.close();
  });

  test("the demo page's controls drive recommendRow()", async () => {
    const { page, errors } = await openPage("/");
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    const cardIds = () => page.locator("#recs .card").evaluateAll((cards) => cards.map((c) => c.dataset.itemId));
    const [topId] = await cardIds();
    const topTitle = await page.locator("#recs .card .title").first().textContent();

    // Watching the top title lists it in the history and drops it from the row; removing it
    // from the history brings it back.
    await page.locator("#search").fill(topTitle);
    await page.locator("#search").press("Enter");
    assert.deepEqual(await page.locator("#history li span").allTextContents(), [topTitle]);
    assert.ok(!(await cardIds()).includes(topId), "a watched title is not recommended");
    await page.locator("#history .remove").click();
    assert.equal(await page.locator("#history li").count(), 0);
    assert.equal((await cardIds())[0], topId, "an unwatched title comes back");

    await page.locator("#genres .chip").first().click();
    assert.equal(await page.locator("#genres .chip").first().getAttribute("aria-pressed"), "true");
    await page.locator("#device button", { hasText: "TV" }).click();
    assert.equal(await page.locator("#device [aria-checked='true']").textContent(), "TV");

    await page.locator("#k").fill("5");
    assert.equal((await cardIds()).length, 5);
    // An invalid k shows the API's error code; a valid one clears it.
    await page.locator("#k").fill("0");
    assert.match(await page.locator("#error").textContent(), /invalid_argument/);
    await page.locator("#k").fill("10");
    assert.ok(await page.locator("#error").isHidden());
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("the demo page keeps the user's state in IndexedDB across reloads", async () => {
    const { page, errors } = await openPage("/");
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    const title = await page.locator("#recs .card .title").nth(2).textContent();
    await page.locator("#search").fill(title);
    await page.locator("#search").press("Enter");
    await page.locator("#genres .chip").nth(1).click();
    const row = await page.locator("#recs .card").evaluateAll((cards) => cards.map((c) => c.dataset.itemId));
    // Saving is asynchronous: wait until the last save (one play, one genre) has completed.
    await page.waitForSelector("body[data-saved-plays='1'][data-saved-genres='1']", { timeout: 10_000 });
    await page.reload();
    await page.waitForSelector("#recs[data-state='ready']", { timeout: 30_000 });
    assert.deepEqual(await page.locator("#history li span").allTextContents(), [title]);
    assert.equal(await page.locator("#genres .chip").nth(1).getAttribute("aria-pressed"), "true");
    const again = await page.locator("#recs .card").evaluateAll((cards) => cards.map((c) => c.dataset.itemId));
    assert.deepEqual(again, row, "the restored state gives the same row");
    assert.match(await page.locator("#stage-ms").textContent(), /candidates .* rerank/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("the demo page shows a refused bundle's error code", async () => {
    const { corrupted } = await ready();
    const badMagic = corrupted.findIndex((c) => c.code === "bad_magic");
    const { page } = await openPage(`/?bundle=/corrupt/${badMagic}`);
    const banner = page.locator("#error");
    await banner.waitFor({ state: "visible", timeout: 30_000 });
    assert.match(await banner.textContent(), /bad_magic/);
    await page.close();
  });
});
