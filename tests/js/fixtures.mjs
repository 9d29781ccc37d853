// Shared by the node and browser tests: the parity fixture that the native CLI produced, the
// corrupted bundles made from it, and the assertions both tests make.
//
// The fixture lives in $EDGEREC_ARTIFACTS (default: artifacts/ at the repository root):
//   bundle.edgerec   the model bundle
//   requests.jsonl   one request per line: { userId, history, onboardingGenres, context, k }
//   recs.tsv         the native CLI's answer: "user_id\trank\titem_id", ranks from 1
// A missing fixture or package build is a test failure with a message saying what to run,
// never a skip.

import assert from "node:assert/strict";
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

/** Checks that scripts/build-wasm.sh has run; returns the pkg/ directory. */
export function requirePackageBuild() {
  for (const dir of ["node", "bundler", "web"]) {
    requireFile(join(REPO, "pkg", dir, "edgerec_bg.wasm"), "run scripts/build-wasm.sh first");
  }
  return join(REPO, "pkg");
}

/**
 * Reads the parity fixture.
 * @returns {{ bundlePath: string, bundle: Uint8Array, requests: object[], expected: Map<number, number[]> }}
 *   expected maps each userId to the native top-k item ids, best first.
 */
export function loadFixture() {
  const howToMake =
    "generate the parity fixture with the native CLI (see README), " +
    "or point EDGEREC_ARTIFACTS at a directory holding bundle.edgerec, requests.jsonl and recs.tsv";
  const bundlePath = requireFile(join(ARTIFACTS, "bundle.edgerec"), howToMake);
  const requestsPath = requireFile(join(ARTIFACTS, "requests.jsonl"), howToMake);
  const recsPath = requireFile(join(ARTIFACTS, "recs.tsv"), howToMake);

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

  const expected = parseRecs(recsPath);
  for (const req of requests) {
    assert.ok(expected.has(req.userId), `${recsPath} has no rows for user ${req.userId}`);
  }
  assert.equal(expected.size, requests.length, `${recsPath} has users that ${requestsPath} lacks`);

  // Buffer → a Uint8Array of its own (a small readFileSync result may share node's pool).
  const bundle = new Uint8Array(readFileSync(bundlePath));
  return { bundlePath, bundle, requests, expected };
}

function parseRecs(path) {
  const [header, ...rows] = readFileSync(path, "utf8").split("\n").filter((l) => l !== "");
  assert.equal(header, "user_id\trank\titem_id", `${path}: unexpected header`);
  const byUser = new Map();
  rows.forEach((row, i) => {
    const fields = row.split("\t").map(Number);
    assert.ok(
      fields.length === 3 && fields.every(Number.isInteger),
      `${path}:${i + 2}: expected three integers, got ${JSON.stringify(row)}`,
    );
    const [user, rank, item] = fields;
    const items = byUser.get(user) ?? [];
    assert.equal(rank, items.length + 1, `${path}:${i + 2}: ranks of user ${user} must run 1, 2, …`);
    items.push(item);
    byUser.set(user, items);
  });
  return byUser;
}

/**
 * Asserts that `actual` (userId → item ids, as a Map or a plain object from JSON) equals the
 * native top-k exactly: the same ids in the same order for every request.
 */
export function assertParity(actual, fixture) {
  const get = actual instanceof Map ? (u) => actual.get(u) : (u) => actual[u];
  const mismatches = [];
  for (const { userId } of fixture.requests) {
    const want = fixture.expected.get(userId);
    const got = get(userId);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      mismatches.push(`user ${userId}: native ${JSON.stringify(want)}, wasm ${JSON.stringify(got)}`);
    }
  }
  assert.equal(
    mismatches.length,
    0,
    `${mismatches.length} of ${fixture.requests.length} users differ from the native CLI:\n` +
      mismatches.slice(0, 5).join("\n"),
  );
}

/**
 * Damaged copies of a bundle and the error code each must be refused with.
 * @param {Uint8Array} bundle
 * @returns {{ name: string, bytes: Uint8Array, code: string }[]}
 */
export function corruptedBundles(bundle) {
  const flipped = (at) => {
    const bytes = bundle.slice();
    bytes[at] ^= 0xff;
    return bytes;
  };
  return [
    { name: "truncated to half", bytes: bundle.slice(0, bundle.length >> 1), code: "truncated" },
    { name: "last byte missing", bytes: bundle.slice(0, -1), code: "truncated" },
    { name: "byte flipped in the middle", bytes: flipped(bundle.length >> 1), code: "checksum_mismatch" },
    { name: "wrong magic", bytes: flipped(0), code: "bad_magic" },
  ];
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
