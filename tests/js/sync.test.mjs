// Model sync through the npm package (node build, directory store) against the real server:
// `edgerec publish` writes the store, `edgerec serve` serves it on loopback, and a fault proxy
// in front of it plays a server that is down, slow, broken or hostile.
//
//   node --test tests/js/sync.test.mjs
//
// Needs the CLI ($EDGEREC_BIN, `cargo build --workspace --all-targets`) and scripts/build-wasm.sh.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { REPO, TINY_BUNDLE, requireCli, requirePackageBuild, runCli, serveStore } from "./fixtures.mjs";

requirePackageBuild();
const { DirectoryStore, MemoryStore, Model } = await import("../../js/sync-node.mjs");

requireCli();
const NOW = 1_900_000_000;

const publish = (store, key, extra = []) =>
  JSON.parse(runCli("publish", "--bundle", TINY_BUNDLE, "--key", key, "--store", store, "--now", String(NOW), ...extra));

/**
 * A proxy in front of the server. `mode` is one of: "pass", "down" (connection reset), "slow"
 * (never answers), "500", "garbage" (random bytes for manifests), "endless" (an endless body
 * for sections), "truncated" (half of every section).
 */
async function faultProxy(upstream) {
  const state = { mode: "pass", requests: [] };
  const server = createServer((req, res) => {
    state.requests.push({ url: req.url, headers: req.headers });
    const mode = state.mode;
    if (mode === "down") return req.socket.destroy();
    if (mode === "slow") return; // never answers
    if (mode === "500") {
      res.writeHead(500, { "content-type": "text/plain" });
      return res.end("internal error");
    }
    if (mode === "garbage" && req.url.includes("/manifest")) {
      res.writeHead(200);
      return res.end(Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 73 + 11) & 255)));
    }
    if (mode === "endless" && req.url.includes("/sections/")) {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (res.write(chunk)) {}
        res.once("drain", pump);
      };
      res.on("close", () => res.removeAllListeners("drain"));
      return pump();
    }
    const up = httpRequest(
      `${upstream}${req.url}`,
      { method: req.method, headers: { ...req.headers, "accept-encoding": "identity" } },
      (r) => {
        if (mode === "truncated" && req.url.includes("/sections/")) {
          const chunks = [];
          r.on("data", (c) => chunks.push(c));
          r.on("end", () => {
            const all = Buffer.concat(chunks);
            res.writeHead(200);
            res.end(all.subarray(0, all.length >> 1));
          });
          return;
        }
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    up.end();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    close: () => new Promise((r) => server.close(r)) && server.closeAllConnections(),
  };
}

describe("model sync against edgerec serve", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgerec-sync-"));
  const store = join(dir, "store");
  const key = join(dir, "keys/release");
  let server;
  let proxy;
  let trust;

  before(async () => {
    trust = runCli("keys", "generate", "--out", key).trim();
    publish(store, `${key}.key`);
    server = await serveStore(store);
    proxy = await faultProxy(server.url);
  });
  after(() => {
    proxy?.close();
    server?.close();
  });

  const open = (store, extra = {}) =>
    Model.open({ url: proxy.url, publicKey: trust, store, now: () => NOW + 60, timeoutS: 2, ...extra });

  test("installs, answers 304s, downloads only new sections, reopens offline", async () => {
    const storeDir = join(dir, "client-a");
    const model = await open(new DirectoryStore(storeDir));
    assert.ok(model.recommender, JSON.stringify(model.status));
    assert.equal(model.status.version, 1);
    assert.equal(model.recommender.release().version, 1);
    const again = await model.sync();
    assert.deepEqual([again.updated, again.downloadedBytes], [false, 0]);
    assert.equal(proxy.state.requests.at(-1).headers["if-none-match"] !== undefined, true);
    // No request carries anything but the channel, hashes and an ETag.
    for (const r of proxy.state.requests) {
      assert.match(r.url, /^\/v1\/(channels\/stable\/manifest|sections\/[0-9a-f]{64})$/);
      assert.equal(r.headers.cookie, undefined);
    }

    const second = publish(store, `${key}.key`);
    const r = await model.sync();
    assert.equal(r.updated, true);
    assert.equal(model.status.version, 2);
    // Only the release stamp changed: the manifest and one small section.
    assert.equal(r.downloadedBytes, second.manifest_bytes + second.delta_bytes);
    assert.ok(second.delta_bytes < 100, `delta ${second.delta_bytes}`);
    model.close();

    // A restart with the server unreachable serves the installed model.
    const offline = await Model.open({
      url: "http://127.0.0.1:9",
      publicKey: trust,
      store: new DirectoryStore(storeDir),
      timeoutS: 1,
    });
    assert.equal(offline.status.version, 2);
    assert.ok(offline.recommender);
    const down = await offline.sync();
    assert.equal(down.error?.code, "network");
    assert.equal(offline.status.lastError.code, "network");
    offline.close();
  });

  test("server faults keep the old model and recover", async () => {
    const model = await open(new MemoryStore());
    assert.equal(model.status.version, 2);
    publish(store, `${key}.key`); // version 3 waits on the server
    for (const [mode, code] of [
      ["down", "network"],
      ["slow", "timeout"],
      ["500", "http_error"],
      ["garbage", "bad_manifest"],
      ["endless", "section_mismatch"],
      ["truncated", "section_mismatch"],
    ]) {
      proxy.state.mode = mode;
      const r = await model.sync();
      assert.equal(r.updated, false, mode);
      assert.equal(r.error?.code, code, `${mode}: ${JSON.stringify(r.error)}`);
      assert.equal(model.status.version, 2, mode);
      assert.ok(model.recommender.itemCount > 0, mode);
    }
    proxy.state.mode = "pass";
    const healed = await model.sync();
    assert.equal(healed.updated, true, JSON.stringify(healed));
    assert.equal(model.status.version, 3);
    assert.equal(model.status.lastError, null);
    model.close();
  });

  test("refuses bad signatures, unknown keys, rollback, expiry and swapped sections", async () => {
    const model = await open(new MemoryStore());
    const v = model.status.version;
    const manifestPath = join(store, "channels/stable/manifest");
    const good = readFileSync(manifestPath);
    const refused = async (bytes, code) => {
      writeFileSync(manifestPath, bytes);
      const r = await model.sync();
      writeFileSync(manifestPath, good);
      assert.equal(r.error?.code, code, JSON.stringify(r));
      assert.equal(model.status.version, v);
      assert.equal(model.status.lastRefused.code, code);
    };
    // A flipped signature bit.
    const flipped = Buffer.from(good);
    flipped[flipped.length - 5] ^= 1;
    await refused(flipped, "bad_signature");
    // Signed by a key the client does not trust.
    const other = join(dir, "keys/other");
    runCli("keys", "generate", "--out", other);
    const otherStore = join(dir, "other-store");
    for (let i = 0; i < 5; i++) publish(otherStore, `${other}.key`);
    await refused(readFileSync(join(otherStore, "channels/stable/manifest")), "untrusted_key");
    // An older signed manifest of the same channel.
    const versions = readdirSync(join(store, "channels/stable")).filter((n) => n.endsWith(".manifest"));
    const oldest = versions.map((n) => Number.parseInt(n)).sort((a, b) => a - b)[0];
    await refused(readFileSync(join(store, `channels/stable/${oldest}.manifest`)), "rollback");
    // Expired: published long ago with a one-day validity.
    const staleStore = join(dir, "stale-store");
    for (let i = 0; i < 5; i++)
      runCli("publish", "--bundle", TINY_BUNDLE, "--key", `${key}.key`, "--store", staleStore, "--now", String(NOW - 30 * 86400), "--expires-days", "1");
    await refused(readFileSync(join(staleStore, "channels/stable/manifest")), "expired");
    // Another channel's manifest.
    const betaStore = join(dir, "beta-store");
    for (let i = 0; i < 5; i++) publish(betaStore, `${key}.key`, ["--channel", "beta"]);
    await refused(readFileSync(join(betaStore, "channels/beta/manifest")), "wrong_channel");

    // Mix-and-match: the next release's new section replaced by another section's bytes.
    const next = publish(store, `${key}.key`);
    const hashes = readFileSync(join(store, `channels/stable/${next.version}.sections`), "utf8").trim().split("\n");
    const previous = new Set(
      readFileSync(join(store, `channels/stable/${next.version - 1}.sections`), "utf8").trim().split("\n"),
    );
    const fresh = hashes.find((h) => !previous.has(h));
    const blob = join(store, "sections", fresh);
    const original = readFileSync(blob);
    writeFileSync(blob, readFileSync(join(store, "sections", hashes.find((h) => h !== fresh))));
    const mixed = await model.sync();
    assert.equal(mixed.error?.code, "section_mismatch", JSON.stringify(mixed));
    assert.equal(model.status.version, v);
    writeFileSync(blob, original);
    const fixed = await model.sync();
    assert.equal(fixed.updated, true);
    assert.equal(model.status.version, next.version);
    model.close();
  });

  test("a rotated-out signing key is refused once the new key set was seen", async () => {
    const root = join(dir, "keys/root");
    const a = join(dir, "keys/a");
    const b = join(dir, "keys/b");
    const rootPub = runCli("keys", "generate", "--out", root).trim();
    runCli("keys", "generate", "--out", a);
    runCli("keys", "generate", "--out", b);
    runCli("keys", "delegate", "--root", `${root}.key`, "--signer", `${a}.pub`, "--serial", "1", "--expires-days", "36500", "--out", `${dir}/set1`);
    runCli("keys", "delegate", "--root", `${root}.key`, "--signer", `${b}.pub`, "--serial", "2", "--expires-days", "36500", "--out", `${dir}/set2`);
    const rotStore = join(dir, "rot-store");
    const oldStore = join(dir, "rot-old");
    const withSet = (s, k, set) => ["publish", "--bundle", TINY_BUNDLE, "--key", `${k}.key`, "--key-set", set, "--trust", rootPub, "--store", s, "--now", String(NOW)];
    runCli(...withSet(rotStore, a, `${dir}/set1`));
    const rotServer = await serveStore(rotStore);
    try {
      const model = await Model.open({ url: rotServer.url, publicKey: rootPub, now: () => NOW + 60 });
      assert.equal(model.status.version, 1);
      runCli(...withSet(rotStore, b, `${dir}/set2`));
      assert.equal((await model.sync()).updated, true);
      // The old key, under its old key set, at a higher version: refused.
      for (let i = 0; i < 4; i++) runCli(...withSet(oldStore, a, `${dir}/set1`));
      copyFileSync(join(oldStore, "channels/stable/manifest"), join(rotStore, "channels/stable/manifest"));
      const r = await model.sync();
      assert.equal(r.error?.code, "rollback", JSON.stringify(r));
      assert.match(r.error.message, /key set serial/);
      assert.equal(model.status.version, 2);
      model.close();
    } finally {
      rotServer.close();
    }
  });

  test("a crash between download and swap leaves the old model installed", async () => {
    const storeDir = join(dir, "client-crash");
    const first = await open(new DirectoryStore(storeDir));
    const before = first.status.version;
    first.close();
    publish(store, `${key}.key`);
    // A child process syncs and is killed just before it writes the manifest (the switch). It
    // talks to the server directly: this process (and its proxy) waits on it.
    const script = `
      const { DirectoryStore, Model } = await import(${JSON.stringify(join(REPO, "js/sync-node.mjs"))});
      const store = new DirectoryStore(${JSON.stringify(storeDir)});
      const put = store.putMeta.bind(store);
      store.putMeta = async (name, bytes) => { if (name === "manifest") process.kill(process.pid, "SIGKILL"); return put(name, bytes); };
      const m = await Model.open({ url: ${JSON.stringify(server.url)}, publicKey: ${JSON.stringify(trust)}, store, now: () => ${NOW + 60} });
      await m.sync();
    `;
    let signal = null;
    try {
      execFileSync(process.execPath, ["--input-type=module", "-e", script], { stdio: "ignore" });
    } catch (err) {
      signal = err.signal;
    }
    assert.equal(signal, "SIGKILL");
    // The downloaded blobs are there, the switch is not: the old release opens.
    const reopened = await Model.open({ url: "http://127.0.0.1:9", publicKey: trust, store: new DirectoryStore(storeDir), timeoutS: 1 });
    assert.equal(reopened.status.version, before);
    reopened.close();
    const healthy = await open(new DirectoryStore(storeDir));
    await healthy.sync();
    assert.ok(healthy.status.version > before);
    assert.ok(existsSync(join(storeDir, "manifest")));
    healthy.close();
  });
});
