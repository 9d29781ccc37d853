// Shared by the node and browser tests: the parity fixtures that the native CLI produced, the
// corrupted bundles made from them, and the assertions both tests make.
//
// Two fixtures, both written by scripts/artifacts.sh with `edgerec recommend --requests-out`
// (the device pipeline, natively):
//   $EDGEREC_ARTIFACTS/           the default bundle (no ranker)
//   $EDGEREC_ARTIFACTS/device/    the ranked bundle, with fatigue impressions in the states
// each holding
//   bundle.edgerec   the model bundle
//   requests.jsonl   one request per line: { userId, state (UserState bytes as hex), options }
//   recs.tsv         the native rows: "user_id\trank\titem_id\tplaced_by\tscore\treason"
// ($EDGEREC_ARTIFACTS defaults to artifacts/ at the repository root.) A missing fixture or
// package build is a test failure with a message saying what to run, never a skip.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const ARTIFACTS = resolve(process.env.EDGEREC_ARTIFACTS ?? join(REPO, "artifacts"));

/** Fails with what to run when a build output the tests need is absent. */
export function requireFile(path, howToMake) {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: ${howToMake}`);
  }
  return path;
}

/** The tiny bundle of tests/data: what the sync tests publish. */
export const TINY_BUNDLE = join(REPO, "tests/data/tiny-v1-without-genv.edgerec");

/** The native CLI ($EDGEREC_BIN, else the shared target directory's), which must be built. */
export function requireCli() {
  return requireFile(
    process.env.EDGEREC_BIN ?? join(process.env.HOME, ".cache/edgerec/target/debug/edgerec"),
    "build the CLI: source scripts/env.sh && cargo build --workspace --all-targets",
  );
}

/** Runs the CLI; returns its standard output (throws with its standard error on failure). */
export function runCli(...args) {
  return execFileSync(requireCli(), args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * `edgerec serve --store STORE` on a free loopback port, plus `extra` arguments.
 * @returns {Promise<{ url: string, close: () => void }>} url without a trailing slash.
 */
export async function serveStore(store, extra = []) {
  const child = spawn(requireCli(), ["serve", "--store", store, "--port", "0", "--threads", "1", ...extra], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/serving (http:\/\/[^ ]+?)\/? /);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`edgerec serve exited with ${code}`)));
  });
  return { url, close: () => child.kill("SIGTERM") };
}

/** Debian's chromium (override with $CHROMIUM): Playwright only drives it, nothing is downloaded. */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// Root in a container; no GPU; and nothing that reaches for the network, which is closed here.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Headless Chromium with a fresh temporary profile (fails saying what to install if absent). */
export async function launchChromium() {
  requireFile(CHROMIUM, "install Debian's chromium (apt-get install chromium) or set $CHROMIUM");
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Checks that scripts/build-wasm.sh has run; returns the pkg/ directory. */
export function requirePackageBuild() {
  for (const dir of ["node", "bundler", "web"]) {
    requireFile(join(REPO, "pkg", dir, "edgerec.js"), "run scripts/build-wasm.sh first");
  }
  for (const f of ["edgerec_bg.wasm", "edgerec_baseline_bg.wasm"]) {
    requireFile(join(REPO, "pkg", "web", f), "run scripts/build-wasm.sh first");
  }
  return join(REPO, "pkg");
}

/**
 * Reads a parity fixture (see the top of this file): `dir` is "" for the default bundle's,
 * "device" for the ranked bundle's. Every request must have a row of exactly the length it
 * asks for (an empty or short fixture would let parity pass vacuously).
 * @returns {{ bundlePath: string, bundle: Uint8Array, requests: object[], expected: Map<number, { ids: number[], reasons: string[], scores: number[] }> }}
 */
export function loadRowFixture(dir) {
  const root = join(ARTIFACTS, dir);
  const howToMake = `run scripts/artifacts.sh (it writes the parity fixture into ${root})`;
  const bundlePath = requireFile(join(root, "bundle.edgerec"), howToMake);
  const requestsPath = requireFile(join(root, "requests.jsonl"), howToMake);
  const requests = readFileSync(requestsPath, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line, i) => {
      try {
        return JSON.parse(line);
      } catch (err) {
        throw new Error(`${requestsPath}:${i + 1}: ${err.message}`);
      }
    });
  assert.ok(requests.length > 0, `${requestsPath} holds no requests`);
  const recsPath = requireFile(join(root, "recs.tsv"), howToMake);
  const [header, ...rows] = readFileSync(recsPath, "utf8").split("\n").filter((l) => l !== "");
  assert.equal(header, "user_id\trank\titem_id\tplaced_by\tscore\treason", `${recsPath}: unexpected header`);
  const expected = new Map(requests.map((r) => [r.userId, { ids: [], reasons: [], scores: [] }]));
  for (const row of rows) {
    const [user, rank, item, , score, reason] = row.split("\t");
    const want = expected.get(Number(user));
    assert.ok(want, `${recsPath}: user ${user} has no request`);
    assert.equal(Number(rank), want.ids.length + 1, `${recsPath}: ranks of user ${user} must run 1, 2, …`);
    want.ids.push(Number(item));
    want.reasons.push(reason);
    want.scores.push(Number(score));
  }
  for (const { userId, options } of requests) {
    assert.ok(Number.isInteger(options.k) && options.k > 0, `${requestsPath}: user ${userId} asks for no k`);
    assert.equal(expected.get(userId).ids.length, options.k, `${recsPath}: user ${userId}'s row is not ${options.k} long`);
  }
  // Buffer → a Uint8Array of its own (a small readFileSync result may share node's pool).
  return { bundlePath, bundle: new Uint8Array(readFileSync(bundlePath)), requests, expected };
}

/** The default bundle's parity fixture. */
export const loadFixture = () => loadRowFixture("");

/** The ranked bundle's parity fixture (fatigue impressions in the states). */
export const loadDeviceFixture = () => loadRowFixture("device");

/**
 * Asserts the wasm rows equal the native ones: the same titles in the same order with the same
 * reasons, scores within 1e-5 (tract's float kernels may differ in the last bits).
 */
export function assertDeviceParity(actual, fixture) {
  assert.ok(fixture.requests.length > 0, "the fixture holds no requests");
  const mismatches = [];
  let ranked = 0;
  for (const { userId, options } of fixture.requests) {
    const want = fixture.expected.get(userId);
    const got = actual[userId];
    assert.equal(got?.ids.length, options.k, `user ${userId}: the wasm row is not ${options.k} long`);
    ranked += got?.ranked ? 1 : 0;
    const scoresClose =
      got && got.scores.length === want.scores.length && got.scores.every((s, i) => Math.abs(s - want.scores[i]) <= 1e-5);
    if (!got || JSON.stringify(got.ids) !== JSON.stringify(want.ids) || JSON.stringify(got.reasons) !== JSON.stringify(want.reasons) || !scoresClose) {
      mismatches.push(`user ${userId}: native ${JSON.stringify(want)}, wasm ${JSON.stringify(got)}`);
    }
  }
  assert.equal(
    mismatches.length,
    0,
    `${mismatches.length} of ${fixture.requests.length} device rows differ from the native CLI:\n` +
      mismatches.slice(0, 3).join("\n"),
  );
  return ranked;
}

/**
 * Damaged copies of a bundle and the error code each must be refused with: truncations, a bit
 * flip, wrong magic, newer container and section versions, an inflated section length, a
 * missing required section and, given `other` (a bundle with a ranker), sections swapped in
 * from it and its ranker without the feature contract.
 * @param {Uint8Array} bundle
 * @param {Uint8Array} [other]
 * @returns {{ name: string, bytes: Uint8Array, code: string }[]}
 */
export function corruptedBundles(bundle, other) {
  const flipped = (at) => {
    const bytes = bundle.slice();
    bytes[at] ^= 0xff;
    return bytes;
  };
  const cases = [
    { name: "truncated to half", bytes: bundle.slice(0, bundle.length >> 1), code: "truncated" },
    { name: "last byte missing", bytes: bundle.slice(0, -1), code: "truncated" },
    { name: "byte flipped in the middle", bytes: flipped(bundle.length >> 1), code: "checksum_mismatch" },
    { name: "wrong magic", bytes: flipped(0), code: "bad_magic" },
  ];
  // The rest are well-formed containers (every checksum recomputed) with a wrong inside: the
  // reader must refuse them for what they say, not because a hash gave them away.
  const sections = sectionsOf(bundle);
  assert.deepEqual(containerOf(sections), bundle, "the test's container writer reproduces the bundle");
  const newer = bundle.slice();
  newer[8] = 2;
  cases.push({ name: "newer format version", bytes: newer, code: "unsupported_version" });
  cases.push({
    name: "first section's length inflated",
    bytes: containerOf(sections, { inflate: 1 << 30 }),
    code: "truncated",
  });
  cases.push({
    name: "a section of a newer version",
    bytes: containerOf(sections.map((s) => (s.tag === "POPL" ? { ...s, version: 2 } : s))),
    code: "unsupported_version",
  });
  cases.push({
    name: "a required section missing",
    bytes: containerOf(sections.filter((s) => s.tag !== "CATL")),
    code: "missing_section",
  });
  // The device pipeline's sections (when the bundle has them): each one damaged inside a
  // well-formed container.
  const has = (tag) => sections.some((s) => s.tag === tag);
  const replaced = (tag, f) => containerOf(sections.map((s) => (s.tag === tag ? f(s) : s)));
  if (has("MDIA")) {
    cases.push({
      name: "the media table cut short",
      bytes: replaced("MDIA", (s) => ({ ...s, payload: s.payload.slice(0, s.payload.length - 7) })),
      code: "malformed",
    });
    cases.push({
      name: "a media table without its feature contract",
      bytes: containerOf(sections.filter((s) => s.tag !== "FEAT")),
      code: "contract_mismatch",
    });
  }
  if (has("SERV")) {
    cases.push({
      name: "serving settings with MMR lambda 2",
      bytes: replaced("SERV", (s) => {
        const payload = s.payload.slice();
        new DataView(payload.buffer).setFloat32(12, 2, true); // candidates, k, fatigue, then lambda
        return { ...s, payload };
      }),
      code: "malformed",
    });
  }
  const fact = sections.find((s) => s.tag === "FACT");
  if (fact?.version === 2) {
    cases.push({
      name: "int8 factors declared as f32 (FACT v1)",
      bytes: replaced("FACT", (s) => ({ ...s, version: 1 })),
      code: "malformed",
    });
  }
  if (has("TWRT")) {
    cases.push({
      name: "the user tower's ONNX damaged",
      bytes: replaced("TWRT", (s) => {
        const payload = s.payload.slice();
        // The ONNX bytes end the section: break the protobuf near their end.
        for (let i = payload.length - 40; i < payload.length - 20; i++) payload[i] = 0xff;
        return { ...s, payload };
      }),
      code: "malformed",
    });
  }
  cases.push({
    name: "an HNSW graph section of garbage",
    bytes: containerOf([
      ...sections,
      // One graph for the iALS space: name "ials", max norm 1, 40 bytes of 0xff.
      {
        tag: "HNSW",
        version: 1,
        payload: (() => {
          const name = new TextEncoder().encode("ials");
          const out = new Uint8Array(4 + 4 + name.length + 4 + 4 + 40);
          const v = new DataView(out.buffer);
          v.setUint32(0, 1, true);
          v.setUint32(4, name.length, true);
          out.set(name, 8);
          v.setFloat32(8 + name.length, 1, true);
          v.setUint32(12 + name.length, 40, true);
          out.fill(0xff, 16 + name.length);
          return out;
        })(),
      },
    ]),
    code: "malformed",
  });
  if (other) {
    const from = new Map(sectionsOf(other).map((s) => [s.tag, s]));
    for (const tag of ["POPL", "CATL"]) {
      cases.push({
        name: `${tag} swapped in from another bundle`,
        bytes: containerOf(sections.map((s) => (s.tag === tag ? from.get(tag) : s))),
        code: "malformed",
      });
    }
    const ranked = sectionsOf(other);
    cases.push({
      name: "a ranker without its feature contract",
      bytes: containerOf(ranked.filter((s) => s.tag !== "FEAT")),
      code: "contract_mismatch",
    });
  }
  return cases;
}

/** A bundle's sections, in table order (format 1, see src/bundle/mod.rs). */
export function sectionsOf(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(12, true);
  return Array.from({ length: n }, (_, i) => {
    const e = 16 + 56 * i;
    const offset = Number(view.getBigUint64(e + 8, true));
    const length = Number(view.getBigUint64(e + 16, true));
    return {
      tag: String.fromCharCode(...bytes.subarray(e, e + 4)),
      version: view.getUint16(e + 4, true),
      payload: bytes.slice(offset, offset + length),
    };
  });
}

const sha256 = (bytes) => new Uint8Array(createHash("sha256").update(bytes).digest());

/**
 * Writes a format-1 container around `sections` with a valid table and checksums. `inflate`
 * adds that many bytes to the first section's declared length (its hash and the header's are
 * still computed, so only the length is wrong).
 */
export function containerOf(sections, { inflate = 0 } = {}) {
  const table = 16 + 56 * sections.length;
  const total = table + 32 + sections.reduce((sum, s) => sum + s.payload.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode("EDGEREC\0"), 0);
  view.setUint16(8, 1, true);
  view.setUint32(12, sections.length, true);
  let offset = table + 32;
  sections.forEach((s, i) => {
    const e = 16 + 56 * i;
    out.set(new TextEncoder().encode(s.tag), e);
    view.setUint16(e + 4, s.version, true);
    view.setBigUint64(e + 8, BigInt(offset), true);
    view.setBigUint64(e + 16, BigInt(s.payload.length + (i === 0 ? inflate : 0)), true);
    out.set(sha256(s.payload), e + 24);
    out.set(s.payload, offset);
    offset += s.payload.length;
  });
  out.set(sha256(out.subarray(0, table)), table);
  return out;
}

/**
 * Asserts that `thrown` (what www/parity.js `errorOf` returned) is an Error carrying `code`.
 */
export function assertErrorCode(thrown, code, what) {
  assert.ok(thrown, `${what}: nothing was thrown, expected code ${code}`);
  assert.ok(thrown.isError, `${what}: threw a non-Error: ${thrown.message}`);
  assert.equal(thrown.code, code, `${what}: wrong code (message: ${thrown.message})`);
}

/**
 * The ranker golden fixture (tests/data/ranker/, written by
 * `cargo run -p edgerec-rank --example ranker_fixtures -- tests/data/ranker`): bundles carrying
 * a trained ranker, fixed inputs, and the trainer's own scores for them.
 * @returns {{ inputs: object[], expected: Record<string, number[]>, bundles: Record<string, Uint8Array> }}
 */
export function loadRankerFixture() {
  const dir = join(REPO, "tests", "data", "ranker");
  const read = (name) => readFileSync(requireFile(join(dir, name), "it is committed with the repository"));
  const inputs = JSON.parse(read("inputs.json"));
  const expected = JSON.parse(read("expected.json"));
  const bundles = {};
  for (const name of Object.keys(expected)) {
    bundles[name] = new Uint8Array(read(`${name}.edgerec`));
  }
  assert.ok(Object.keys(bundles).length >= 2, "fixtures for the logistic regression and the trees");
  return { inputs, expected, bundles };
}

/** Asserts that the wasm ranker's scores equal the trainer's within 1e-5. */
export function assertRankerParity(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: one score per input`);
  actual.forEach((got, i) => {
    assert.ok(Math.abs(got - expected[i]) <= 1e-5, `${what} input ${i}: wasm ${got}, trainer ${expected[i]}`);
  });
}
