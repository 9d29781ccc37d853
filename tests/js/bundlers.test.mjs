// The package's plain import in fresh bundler apps, with no configuration: a Vite 8 app (its dev
// server, which pre-bundles the package, and `vite build` served as static files) and a webpack 5
// app (a production build, no webpack.config.js). Each app installs the packed tarball, and its
// script does `import { Recommender, UserState, wasmFlavour } from "edgerec"`, fetches a bundle,
// computes the parity users' rows and writes them into the page. In headless Chromium every row
// must equal the native CLI's, without page errors or failed requests, on the SIMD build and on
// the baseline (an engine without SIMD: WebAssembly.validate answering false), fetched from
// wherever the bundler put the file.
//
//   node --test tests/js/bundlers.test.mjs
//
// Vite, webpack and webpack-cli are the repository's devDependencies (npm ci): the apps install
// nothing else, and Vite runs through its JS API, webpack through the CLI in node_modules/.bin.
// Needs scripts/build-wasm.sh, the parity fixture (see fixtures.mjs) and Debian's chromium.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile, copyFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";

import { REPO, assertDeviceParity, launchChromium, loadFixture, requireFile, requirePackageBuild } from "./fixtures.mjs";

const run = promisify(execFile);

// The app's script, the same for both bundlers: what a user writes, plus the parity helpers
// (www/parity.js, copied beside it). `edgerec/web` is the module the entry initialises: the
// two names must give the same classes (one glue, one wasm instance).
const MAIN_JS = `import { Recommender, UserState, wasmFlavour } from "edgerec";
import * as web from "edgerec/web";
import { deviceRows } from "./parity.js";

const out = document.getElementById("result");
try {
  const [bundle, requests] = await Promise.all([
    fetch("bundle.edgerec").then((r) => r.arrayBuffer()),
    fetch("requests.json").then((r) => r.json()),
  ]);
  const rec = new Recommender(new Uint8Array(bundle));
  const rows = deviceRows(rec, UserState, requests);
  out.textContent = JSON.stringify({ flavour: wasmFlavour, sameModule: web.UserState === UserState, rows });
} catch (err) {
  out.textContent = JSON.stringify({ error: String(err?.stack ?? err) });
}
`;

const page = (title, script) => `<!doctype html>
<html>
  <head><meta charset="utf-8"><title>${title}</title></head>
  <body>
    <pre id="result"></pre>
    ${script}
  </body>
</html>
`;

// A fresh Vite app as create-vite lays one out (index.html at the root), without vite.config.js.
const VITE_APP = {
  "package.json": JSON.stringify({ name: "vite-app", private: true, type: "module" }),
  "index.html": page("edgerec in Vite", `<script type="module" src="/src/main.js"></script>`),
  "src/main.js": MAIN_JS,
};
// A fresh webpack app as webpack's Getting Started lays one out (src/index.js, dist/index.html),
// without webpack.config.js: the defaults build src/index.js into dist/main.js.
const WEBPACK_APP = {
  "package.json": JSON.stringify({ name: "webpack-app", private: true }),
  "dist/index.html": page("edgerec in webpack", `<script src="main.js"></script>`),
  "src/index.js": MAIN_JS,
};

const MIME = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

/** A static server for `root` alone, on a free loopback port. */
async function serveStatic(root) {
  const server = createServer(async (req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url, "http://x").pathname)));
    const file = path.endsWith(sep) ? join(path, "index.html") : path;
    const found = file.startsWith(root + sep) && (await stat(file).catch(() => null))?.isFile();
    if (!found) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": MIME[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

/** Writes `files` (path → text) under `dir`, installs the tarball there, copies the helpers. */
async function makeApp(dir, files, tarball, helpersDir) {
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  await copyFile(join(REPO, "www", "parity.js"), join(dir, helpersDir, "parity.js"));
  // The package has no dependencies: nothing is fetched.
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: dir });
  return dir;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

describe("the plain import in fresh Vite and webpack apps, without configuration", () => {
  let dir, fixture, browser, vite;
  const stops = [];
  const wasmSha = {};

  before(async () => {
    const pkg = requirePackageBuild();
    fixture = loadFixture();
    for (const [flavour, file] of [["simd", "edgerec_bg.wasm"], ["baseline", "edgerec_baseline_bg.wasm"]]) {
      wasmSha[flavour] = sha256(readFileSync(join(pkg, "web", file)));
    }
    for (const bin of ["vite", "webpack"]) {
      requireFile(join(REPO, "node_modules", ".bin", bin), "run npm ci (scripts/setup.sh)");
    }
    vite = await import("vite");
    dir = await mkdtemp(join(tmpdir(), "edgerec-bundlers-"));
    const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { cwd: REPO });
    const tarball = join(dir, JSON.parse(stdout)[0].filename);
    await makeApp(join(dir, "vite-app"), VITE_APP, tarball, "src");
    await makeApp(join(dir, "webpack-app"), WEBPACK_APP, tarball, "src");
    browser = await launchChromium();
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Loads the app at `url` in a new page (the baseline flavour: an engine whose
   * WebAssembly.validate refuses SIMD), serving the fixture's bundle and requests; asserts the
   * rows, the build it ran, no errors; returns the URLs the page requested.
   */
  async function assertApp(url, flavour) {
    const page = await browser.newPage();
    const errors = [];
    const requested = [];
    const wasm = [];
    page.on("console", (msg) => msg.type() === "error" && errors.push(`console: ${msg.text()}`));
    page.on("requestfailed", (req) => errors.push(`request failed: ${req.url()}`));
    page.on("response", async (res) => {
      requested.push(res.url());
      if (res.status() >= 400) errors.push(`HTTP ${res.status()}: ${res.url()}`);
      if (new URL(res.url()).pathname.endsWith(".wasm")) wasm.push(res.body().then(sha256));
    });
    const uncaught = new Promise((_, reject) => page.on("pageerror", (err) => reject(new Error(`uncaught: ${err.message}`))));
    if (flavour === "baseline") await page.addInitScript(() => (WebAssembly.validate = () => false));
    await page.route((u) => u.pathname.endsWith("/bundle.edgerec"), (route) =>
      route.fulfill({ body: Buffer.from(fixture.bundle), contentType: "application/octet-stream" }),
    );
    await page.route((u) => u.pathname.endsWith("/requests.json"), (route) =>
      route.fulfill({ body: JSON.stringify(fixture.requests), contentType: "application/json" }),
    );
    try {
      await page.goto(url);
      await Promise.race([page.waitForFunction(() => document.getElementById("result")?.textContent, null, { timeout: 60_000 }), uncaught]);
      const result = JSON.parse(await page.textContent("#result"));
      assert.equal(result.error, undefined, `the app's script threw: ${result.error}`);
      assert.equal(result.flavour, flavour);
      assert.equal(result.sameModule, true, "edgerec and edgerec/web gave different classes");
      assertDeviceParity(result.rows, fixture);
      assert.deepEqual(await Promise.all(wasm), [wasmSha[flavour]], `one .wasm fetched, the ${flavour} build`);
      assert.deepEqual(errors, []);
      return requested;
    } finally {
      await page.close();
    }
  }

  test("Vite 8 dev server: the pre-bundled package renders the rows", async () => {
    const root = join(dir, "vite-app");
    const server = await vite.createServer({
      root,
      configFile: false,
      logLevel: "error",
      clearScreen: false,
      server: { host: "127.0.0.1", port: 0 },
    });
    stops.push(() => server.close());
    await server.listen();
    const url = server.resolvedUrls.local[0];
    const requested = await assertApp(url, "simd");
    // The case that failed before: Vite's dependency optimizer bundled the package.
    assert.ok(requested.some((u) => new URL(u).pathname.startsWith("/node_modules/.vite/deps/edgerec")), "edgerec was not pre-bundled");
    await assertApp(url, "baseline");
  });

  test("vite build, served as static files", async () => {
    const root = join(dir, "vite-app");
    await vite.build({ root, configFile: false, logLevel: "error", clearScreen: false });
    const assets = await readdir(join(root, "dist", "assets"));
    assert.equal(assets.filter((f) => f.endsWith(".wasm")).length, 2, `both builds emitted: ${assets}`);
    const server = await serveStatic(join(root, "dist"));
    stops.push(server.close);
    await assertApp(server.url, "simd");
    await assertApp(server.url, "baseline");
  });

  test("webpack 5 production build without a config file, served as static files", async () => {
    const root = join(dir, "webpack-app");
    const { stdout } = await run(join(REPO, "node_modules", ".bin", "webpack"), ["--mode", "production", "--no-color"], {
      cwd: root,
      maxBuffer: 16 << 20,
    });
    assert.doesNotMatch(stdout, /\bERROR\b/, stdout);
    const emitted = await readdir(join(root, "dist"));
    assert.equal(emitted.filter((f) => f.endsWith(".wasm")).length, 2, `both builds emitted: ${emitted}`);
    const server = await serveStatic(join(root, "dist"));
    stops.push(server.close);
    await assertApp(server.url, "simd");
    await assertApp(server.url, "baseline");
  });
});
