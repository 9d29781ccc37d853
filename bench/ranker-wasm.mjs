// Benchmark (not a test): the bundle's ranker scored by tract inside edgerec's wasm
// (pkg/node, `Recommender.rankerScores`) against onnxruntime-web (wasm, one thread) on the
// identical ONNX bytes and identical inputs.
//
//   bash scripts/bench-ranker-wasm.sh            # builds pkg/node if missing, then runs this
//   node bench/ranker-wasm.mjs [--runs N] [--warmup N] [--warmup-ms N] [--batch N] [--loads N]
//
// For each fixture bundle in tests/data/ranker/ ({logistic,gbdt,deep}.edgerec) the ONNX model
// is cut out of the bundle's RANK section (src/bundle/ranking.rs), so both runtimes load the
// same bytes. The fixture's inputs (tests/data/ranker/inputs.json) are repeated to a batch.
//
// What is measured, and how (printed with the results too):
// * runtime start: tract = require() of pkg/node/edgerec.js (compiles and instantiates the
//   wasm); ort = its first InferenceSession.create (ort starts its wasm on the first session),
//   on the logistic model.
// * load: tract = `new Recommender(bundle)`, the whole bundle (catalog, candidate sources,
//   checksums, contract checks, tract's optimisation, a probe run), not the ranker alone;
//   ort = `InferenceSession.create(onnxBytes)`. Median of --loads runs after the first.
// * batch: median ms to score --batch candidates over --runs runs after --warmup runs.
//   tract = `rankerScores(RankerInput[])`, which includes converting the JS objects into wasm
//   (that is the real API); ort = `session.run(feeds)` on tensors built once, outside the
//   loop; a second ort row builds the tensors from the same RankerInput objects inside the
//   loop (the JS assembly the contract describes), for the like-for-like cost.
// * agreement: max |tract - ort| over the batch; above 1e-4 the script exits non-zero.
// * sizes: bytes and `gzip -9` bytes of pkg/node/edgerec_bg.wasm (all of edgerec: tract plus
//   the recommender core) and of the onnxruntime-web wasm file that node actually
//   instantiated (identified by hashing the bytes handed to WebAssembly.instantiate).
//
// If onnxruntime-web cannot load or run a model (e.g. an ONNX-ML operator missing from the
// web build), the table says so in that model's ort cells instead of failing.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, loadavg } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const MODELS = ["logistic", "gbdt", "deep"];
const TOLERANCE = 1e-4;

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} needs a positive integer`);
  return v;
}
const RUNS = option("runs", 200);
const WARMUP = option("warmup", 20);
const BATCH = option("batch", 500);
const LOADS = option("loads", 10);
// V8 runs wasm first in its baseline compiler and tiers hot functions up in the background:
// warm up for at least this long as well as --warmup runs, so both modules run optimised code.
const WARMUP_MS = option("warmup-ms", 2000);

// ---- bundle → RANK section → contract and ONNX bytes -------------------------------------

/** A bundle's sections (format 1, src/bundle/mod.rs); the same reading as tests/js/fixtures.mjs. */
function sectionsOf(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(12, true);
  return Array.from({ length: n }, (_, i) => {
    const e = 16 + 56 * i;
    const offset = Number(view.getBigUint64(e + 8, true));
    const length = Number(view.getBigUint64(e + 16, true));
    return {
      tag: String.fromCharCode(...bytes.subarray(e, e + 4)),
      version: view.getUint16(e + 4, true),
      payload: bytes.subarray(offset, offset + length),
    };
  });
}

/**
 * Decodes a RANK v1 payload (src/bundle/ranking.rs, codec in src/bundle/codec.rs: every
 * length is a little-endian u32): contract, kind, dense [str], bags [(str, u32, u32)],
 * search_vocab [str], output, column, then the ONNX bytes.
 */
function decodeRank(payload) {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let at = 0;
  const u32 = () => {
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const bytes = () => {
    const n = u32();
    if (at + n > payload.length) throw new Error("RANK: a length runs past the payload");
    const b = payload.subarray(at, at + n);
    at += n;
    return b;
  };
  const str = () => new TextDecoder("utf-8", { fatal: true }).decode(bytes());
  const strs = () => Array.from({ length: u32() }, str);
  const contract = str();
  if (contract !== "edgerec-ranker/1") throw new Error(`RANK: unknown contract ${contract}`);
  const kind = str();
  const dense = strs();
  const bags = Array.from({ length: u32() }, () => ({ field: str(), rows: u32(), len: u32() }));
  const searchVocab = strs();
  const output = str();
  const column = u32();
  const onnx = bytes().slice();
  if (at !== payload.length) throw new Error(`RANK: ${payload.length - at} bytes after the model`);
  return { kind, dense, bags, searchVocab, output, column, onnx };
}

// ---- ort input tensors, assembled as RankerContract::assemble does (src/ranker/mod.rs) ----

function assemble(ort, contract, inputs) {
  const n = inputs.length;
  const d = contract.dense.length;
  const feeds = {};
  if (d > 0) {
    const dense = new Float32Array(n * d);
    inputs.forEach((r, i) => {
      if (r.dense.length !== d) throw new Error(`candidate ${i}: ${r.dense.length} dense, want ${d}`);
      dense.set(r.dense, i * d);
    });
    feeds.dense = new ort.Tensor("float32", dense, [n, d]);
  }
  for (const { field, rows, len } of contract.bags) {
    const ids = new BigInt64Array(n * len);
    const weights = new Float32Array(n * len);
    inputs.forEach((r, i) => {
      let values;
      if (field === "movie" || field === "language") values = [r[field] ?? 0];
      else values = r[field] ?? [];
      const m = Math.min(values.length, len);
      for (let k = 0; k < m; k++) {
        const id = values[k];
        ids[i * len + k] = BigInt(id < rows ? id : 0);
        weights[i * len + k] = 1 / m; // stored as f32: Rust's `1.0 / n as f32`
      }
    });
    feeds[`${field}_ids`] = new ort.Tensor("int64", ids, [n, len]);
    feeds[`${field}_weights`] = new ort.Tensor("float32", weights, [n, len]);
  }
  return feeds;
}

/** P(watch) per row: the contract's output, its column. */
function scoresOf(tensor, contract, n) {
  const { dims, data } = tensor;
  if (dims.length === 1 && dims[0] === n && contract.column === 0) return Float32Array.from(data);
  if (dims.length !== 2 || dims[0] !== n || contract.column >= dims[1]) {
    throw new Error(`output ${contract.output} has shape [${dims}], want [${n}, >${contract.column}]`);
  }
  const c = dims[1];
  return Float32Array.from({ length: n }, (_, i) => Number(data[i * c + contract.column]));
}

// ---- an onnxruntime-compatible re-encoding of the gbdt ranker --------------------------------
//
// edgerec-rank writes its trees as a binary TreeEnsembleClassifier with every leaf weighted
// for class 1 and `base_values = [0, base]`. onnxruntime (native and web) then outputs
// σ(base_values) for every row and ignores the trees (microsoft/onnxruntime#1007: binary
// classifier with base_values; fixed on the sklearn-onnx side, not in the runtime). The same
// function without base_values: add `base` to the class-1 weight of every leaf of one tree
// (each row reaches exactly one leaf of it) and drop base_values. Used only to time ort on the
// same trees; its scores are checked against tract's like the others.

/** Protobuf fields of a message: { field, wire, value (Uint8Array for wire 2, else raw bytes) }. */
function pbFields(buf) {
  const out = [];
  let at = 0;
  const varint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[at++];
      if (b === undefined) throw new Error("protobuf: truncated varint");
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const start = at;
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let value;
    if (wire === 0) value = varint();
    else if (wire === 1) (value = buf.subarray(at, at + 8)), (at += 8);
    else if (wire === 5) (value = buf.subarray(at, at + 4)), (at += 4);
    else if (wire === 2) {
      const n = Number(varint());
      value = buf.subarray(at, at + n);
      at += n;
    } else throw new Error(`protobuf: wire type ${wire}`);
    if (at > buf.length) throw new Error("protobuf: truncated field");
    out.push({ field, wire, value, raw: buf.subarray(start, at) });
  }
  return out;
}

function pbVarint(v) {
  const bytes = [];
  let x = BigInt.asUintN(64, BigInt(v));
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    bytes.push(b);
  } while (x);
  return bytes;
}

/** Encodes fields: unchanged ones from their raw bytes, replaced ones ({ field, bytes }) as wire 2. */
function pbEncode(fields) {
  const parts = fields.map((f) =>
    f.raw ? f.raw : Uint8Array.from([...pbVarint((f.field << 3) | 2), ...pbVarint(f.bytes.length), ...f.bytes]),
  );
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

const utf8 = (b) => new TextDecoder().decode(b);

/** An AttributeProto's name and values (floats: field 7, ints: 8, strings: 9, packed or not). */
function pbAttribute(bytes) {
  const a = { name: "", floats: [], ints: [], strings: [] };
  for (const f of pbFields(bytes)) {
    if (f.field === 1) a.name = utf8(f.value);
    else if (f.field === 7 && f.wire === 5) a.floats.push(new DataView(f.value.buffer, f.value.byteOffset, 4).getFloat32(0, true));
    else if (f.field === 7 && f.wire === 2) {
      const v = new DataView(f.value.buffer, f.value.byteOffset, f.value.byteLength);
      for (let i = 0; i < f.value.length; i += 4) a.floats.push(v.getFloat32(i, true));
    } else if (f.field === 8 && f.wire === 0) a.ints.push(Number(BigInt.asIntN(64, f.value)));
    else if (f.field === 8 && f.wire === 2) {
      for (const g of pbFields(packedAsFields(f.value))) a.ints.push(Number(BigInt.asIntN(64, g.value)));
    } else if (f.field === 9) a.strings.push(utf8(f.value));
  }
  return a;
}

/** Packed varints as a sequence of field-1 varint fields, so pbFields can read them. */
function packedAsFields(bytes) {
  const out = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] < 0x80) out.push(0x08, ...bytes.subarray(start, i + 1)), (start = i + 1);
  }
  return Uint8Array.from(out);
}

function floatsAttribute(name, values) {
  const packed = new Uint8Array(values.length * 4);
  const v = new DataView(packed.buffer);
  values.forEach((x, i) => v.setFloat32(i * 4, x, true));
  const nameBytes = new TextEncoder().encode(name);
  return pbEncode([
    { field: 1, bytes: nameBytes },
    { field: 7, bytes: packed },
    { raw: Uint8Array.from([...pbVarint(20 << 3), ...pbVarint(6)]) }, // type = FLOATS
  ]);
}

/** The gbdt model re-encoded for onnxruntime (see above), or throws saying why it cannot be. */
function foldTreeBase(onnx) {
  const model = pbFields(onnx);
  const gi = model.findIndex((f) => f.field === 7 && f.wire === 2);
  const graph = pbFields(model[gi].value);
  const ni = graph.findIndex((f) => f.field === 1 && f.wire === 2 &&
    pbFields(f.value).some((g) => g.field === 4 && utf8(g.value) === "TreeEnsembleClassifier"));
  if (gi < 0 || ni < 0) throw new Error("no TreeEnsembleClassifier node");
  const node = pbFields(graph[ni].value);
  const attrs = new Map();
  node.forEach((f, i) => {
    if (f.field === 5 && f.wire === 2) attrs.set(pbAttribute(f.value).name, { i, ...pbAttribute(f.value) });
  });
  const get = (name) => attrs.get(name) ?? { floats: [], ints: [], strings: [] };
  const base = get("base_values").floats;
  const labels = get("classlabels_int64s").ints;
  const classIds = get("class_ids").ints;
  if (labels.join() !== "0,1" || base.length !== 2 || base[0] !== 0 || classIds.some((c) => c !== 1)) {
    throw new Error("not the binary class-1 layout with base_values [0, b]");
  }
  const tree = get("class_treeids").ints[0];
  const leaves = get("nodes_modes").strings
    .map((m, i) => (m === "LEAF" && get("nodes_treeids").ints[i] === tree ? get("nodes_nodeids").ints[i] : null))
    .filter((x) => x !== null);
  const entries = get("class_treeids").ints
    .map((t, i) => (t === tree ? get("class_nodeids").ints[i] : null))
    .filter((x) => x !== null);
  if ([...entries].sort().join() !== [...leaves].sort().join()) {
    throw new Error(`tree ${tree}: not exactly one class-1 weight per leaf`);
  }
  const weights = get("class_weights").floats.map((w, i) =>
    get("class_treeids").ints[i] === tree ? Math.fround(w + base[1]) : w);
  const newNode = node
    .filter((_, i) => i !== attrs.get("base_values").i)
    .map((f, i) => (f === node[attrs.get("class_weights").i] ? { field: 5, bytes: floatsAttribute("class_weights", weights) } : f));
  const newGraph = graph.map((f, i) => (i === ni ? { field: 1, bytes: pbEncode(newNode) } : f));
  return pbEncode(model.map((f, i) => (i === gi ? { field: 7, bytes: pbEncode(newGraph) } : f)));
}

// ---- timing helpers ---------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function timeRuns(fn) {
  const until = performance.now() + WARMUP_MS;
  for (let i = 0; i < WARMUP || performance.now() < until; i++) await fn();
  const ms = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

async function timeLoads(load, dispose) {
  const ms = [];
  for (let i = 0; i <= LOADS; i++) {
    const t0 = performance.now();
    const x = await load();
    const t = performance.now() - t0;
    if (i > 0) ms.push(t); // the first load of a model warms caches; report the steady state
    await dispose(x);
  }
  return median(ms);
}

function gzip9(path) {
  try {
    return execFileSync("gzip", ["-9", "-c", path], { maxBuffer: 1 << 30 }).length;
  } catch {
    return gzipSync(readFileSync(path), { level: 9 }).length; // no gzip binary: zlib level 9
  }
}

// ---- which wasm does onnxruntime-web instantiate? ----------------------------------------

const instantiated = [];
for (const name of ["instantiate", "compile"]) {
  const original = WebAssembly[name];
  WebAssembly[name] = async function (source, ...rest) {
    const s = await source;
    if (s instanceof ArrayBuffer || ArrayBuffer.isView(s)) {
      const b = s instanceof ArrayBuffer ? new Uint8Array(s) : new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
      instantiated.push({ length: b.length, sha: createHash("sha256").update(b).digest("hex") });
    } else if (s instanceof WebAssembly.Module) {
      instantiated.push({ module: true });
    }
    return original.call(this, s, ...rest);
  };
}
for (const name of ["instantiateStreaming", "compileStreaming"]) {
  const original = WebAssembly[name];
  if (!original) continue;
  WebAssembly[name] = async function (source, ...rest) {
    const r = await source;
    instantiated.push({ url: r?.url ?? "?" });
    return original.call(this, r, ...rest);
  };
}

function whichWasm(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith(".wasm"));
  const found = [];
  for (const seen of instantiated) {
    if (seen.url) {
      found.push({ path: seen.url.startsWith("file:") ? fileURLToPath(seen.url) : seen.url });
      continue;
    }
    if (!seen.sha) continue;
    for (const f of files) {
      const p = join(dir, f);
      if (statSync(p).size !== seen.length) continue;
      if (createHash("sha256").update(readFileSync(p)).digest("hex") === seen.sha) found.push({ path: p });
    }
  }
  return found;
}

// ---- main -------------------------------------------------------------------------------

const pkgWasm = join(REPO, "pkg", "web", "edgerec_bg.wasm");
let t0 = performance.now();
const require = createRequire(import.meta.url);
const { Recommender } = require(join(REPO, "pkg", "node", "edgerec.js"));
const tractStart = performance.now() - t0;

const ort = await import("onnxruntime-web");
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";
const ortDist = join(REPO, "node_modules", "onnxruntime-web", "dist");
const sessionOptions = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };

const dataDir = join(REPO, "tests", "data", "ranker");
const fixtureInputs = JSON.parse(readFileSync(join(dataDir, "inputs.json"), "utf8"));
// BATCH distinct objects (the fixture rows repeated), built once for both runtimes.
const inputs = Array.from({ length: BATCH }, (_, i) => structuredClone(fixtureInputs[i % fixtureInputs.length]));

const results = [];
let ortStart = null;
for (const name of MODELS) {
  const bundle = new Uint8Array(readFileSync(join(dataDir, `${name}.edgerec`)));
  const rank = sectionsOf(bundle).find((s) => s.tag === "RANK");
  if (!rank || rank.version !== 1) throw new Error(`${name}.edgerec: no RANK v1 section`);
  const contract = decodeRank(rank.payload);
  const r = { name, kind: contract.kind, onnxBytes: contract.onnx.length, inputs: 1 + 2 * contract.bags.length };

  // tract, through the package's public API
  r.tractLoad = await timeLoads(() => new Recommender(bundle), (rec) => rec.free());
  const rec = new Recommender(bundle);
  r.engine = rec.ranker()?.engine; // which engine scores it, if the package says
  const tractScores = rec.rankerScores(inputs);
  r.tractBatch = await timeRuns(() => rec.rankerScores(inputs));
  rec.free();

  // onnxruntime-web on the same ONNX bytes
  try {
    if (ortStart === null) {
      t0 = performance.now();
      await (await ort.InferenceSession.create(contract.onnx, sessionOptions)).release();
      ortStart = performance.now() - t0;
    }
    const feeds = assemble(ort, contract, inputs);
    const fetches = [contract.output];
    const diffTo = (scores) => Math.max(...Array.from(tractScores, (s, i) => Math.abs(s - scores[i])));
    const scoreWith = async (onnx) => {
      const session = await ort.InferenceSession.create(onnx, sessionOptions);
      const out = await session.run(feeds, fetches);
      return { session, scores: scoresOf(out[contract.output], contract, BATCH) };
    };
    let onnx = contract.onnx;
    let { session, scores } = await scoreWith(onnx);
    r.maxDiff = diffTo(scores);
    if (!(r.maxDiff <= TOLERANCE) && scores.every((s) => s === scores[0]) && !tractScores.every((s) => s === tractScores[0])) {
      // Every row the same score: onnxruntime#1007 (see foldTreeBase). Time ort on the
      // re-encoding instead, if this is that model and the re-encoding agrees with tract.
      let folded;
      try {
        folded = foldTreeBase(contract.onnx);
      } catch (e) {
        throw new Error(`ort gives one score (${scores[0]}) for every row, tract does not; no re-encoding: ${e.message}`);
      }
      r.identicalDiff = r.maxDiff;
      r.identicalScore = scores[0];
      await session.release();
      onnx = folded;
      ({ session, scores } = await scoreWith(onnx));
      r.maxDiff = diffTo(scores);
      r.refolded = true;
    }
    r.ortLoad = await timeLoads(() => ort.InferenceSession.create(onnx, sessionOptions), (s) => s.release());
    r.ortBatch = await timeRuns(() => session.run(feeds, fetches));
    r.ortBatchAssembled = await timeRuns(() => session.run(assemble(ort, contract, inputs), fetches));
    await session.release();
  } catch (e) {
    r.ortError = String(e?.message ?? e).split("\n")[0].slice(0, 200);
  }
  results.push(r);
}

// ---- report -------------------------------------------------------------------------------

const ortFiles = whichWasm(ortDist);
const ortVersion = require(join(REPO, "node_modules", "onnxruntime-web", "package.json")).version;
const size = (p) => ({ raw: statSync(p).size, gz: gzip9(p) });
const tractSize = size(pkgWasm);
const ortSizes = ortFiles.map((f) => ({ ...f, ...(f.path.startsWith("/") ? size(f.path) : {}) }));

const fmt = (x, digits = 2) => (x === undefined ? "—" : x.toFixed(digits));
const int = (x) => (x === undefined ? "—" : Math.round(x).toLocaleString("en-US"));
const ratio = (a, b) => {
  if (a === undefined || b === undefined) return "—";
  const q = a / b;
  return `${q >= 0.1 ? q.toFixed(2) : q.toPrecision(2)}×`;
};
const rows = [["model", "measure", "tract (edgerec wasm)", "onnxruntime-web", "tract / ort"]];
const perSec = (ms) => (ms === undefined ? undefined : (BATCH / ms) * 1000);
rows.push(["all", "runtime start, ms", fmt(tractStart, 1), fmt(ortStart ?? undefined, 1), ratio(tractStart, ortStart ?? undefined)]);
for (const r of results) {
  const label = `${r.name} (${r.kind}, ${r.onnxBytes} B onnx${r.engine ? `, ${r.engine}` : ""})`;
  if (r.ortError) {
    rows.push([label, "load, ms", fmt(r.tractLoad), `cannot load/run: ${r.ortError}`, "—"]);
    rows.push([label, `${BATCH}-batch, ms`, fmt(r.tractBatch, 3), "—", "—"]);
    rows.push([label, "candidates/s", int(perSec(r.tractBatch)), "—", "—"]);
    continue;
  }
  if (r.refolded) {
    rows.push([label, "max |tract - ort|, identical bytes", r.identicalDiff.toExponential(2),
      `ort: ${r.identicalScore.toFixed(4)} for every row (onnxruntime#1007)`, ""]);
    rows.push([label, "ort below: re-encoded*", "", "base_values folded into tree 0", ""]);
  }
  rows.push([label, "load, ms", fmt(r.tractLoad), fmt(r.ortLoad), ratio(r.tractLoad, r.ortLoad)]);
  rows.push([label, `${BATCH}-batch, ms`, fmt(r.tractBatch, 3), fmt(r.ortBatch, 3), ratio(r.tractBatch, r.ortBatch)]);
  rows.push([label, "candidates/s", int(perSec(r.tractBatch)), int(perSec(r.ortBatch)), ratio(perSec(r.tractBatch), perSec(r.ortBatch))]);
  rows.push([label, `${BATCH}-batch, ms, ort + JS assembly`, fmt(r.tractBatch, 3), fmt(r.ortBatchAssembled, 3), ratio(r.tractBatch, r.ortBatchAssembled)]);
  rows.push([label, "max |tract - ort|", r.maxDiff.toExponential(2), r.maxDiff <= TOLERANCE ? "ok (≤ 1e-4)" : "FAIL (> 1e-4)", ""]);
}
const ortMain = ortSizes[0];
const ortName = ortSizes.map((f) => relative(REPO, f.path)).join(", ") || "(not identified)";
rows.push(["wasm", "bytes", int(tractSize.raw), int(ortMain?.raw), ratio(tractSize.raw, ortMain?.raw)]);
rows.push(["wasm", "gzip -9 bytes", int(tractSize.gz), int(ortMain?.gz), ratio(tractSize.gz, ortMain?.gz)]);

const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
const refolded = results.some((r) => r.refolded);
const line = (r) => `| ${r.map((x, c) => String(x).padEnd(widths[c])).join(" | ")} |`;

console.log(`edgerec ranker: tract (pkg/node) vs onnxruntime-web ${ortVersion}, node ${process.version}, ` +
  `${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(`batch ${BATCH} candidates (tests/data/ranker/inputs.json repeated), median of ${RUNS} runs after ` +
  `≥ ${WARMUP} warm-up runs and ≥ ${WARMUP_MS} ms; ` +
  `loads: median of ${LOADS} after the first`);
console.log("");
console.log(line(rows[0]));
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
rows.slice(1).forEach((r) => console.log(line(r)));
console.log("");
console.log("Notes:");
console.log("- runtime start: tract = require('pkg/node/edgerec.js') (wasm compile + instantiate);");
console.log("  ort = first InferenceSession.create (starts ort's wasm) of the logistic model, incl. that load.");
console.log("- load: tract = new Recommender(bundle), the WHOLE bundle (catalog, candidate sources, checks,");
console.log("  tract optimisation, probe run); ort = InferenceSession.create(onnx bytes from the bundle's RANK).");
console.log("- batch: tract = rankerScores(RankerInput[]), INCLUDING the JS→wasm conversion of the objects;");
console.log("  ort = session.run on tensors built once outside the timed loop; the '+ JS assembly' row");
console.log("  builds those tensors from the same RankerInput objects inside the loop.");
console.log("- ort: wasm backend, ort.env.wasm.numThreads = 1, graphOptimizationLevel 'all'.");
console.log(`- ort wasm instantiated in node: ${ortName}`);
if (refolded) {
  console.log("- * gbdt: onnxruntime scores the bundle's TreeEnsembleClassifier (binary, class-1 leaves,");
  console.log("  base_values [0, b]) as σ(b) for every row, ignoring the trees (onnxruntime#1007, also native");
  console.log("  onnxruntime). Its ort rows use the same trees with b added to tree 0's leaf weights and no");
  console.log("  base_values, which ort scores like tract (the max |diff| row checks it).");
}
console.log(`- tract wasm: ${relative(REPO, pkgWasm)} is all of edgerec (tract + recommender core), built ` +
  `${statSync(pkgWasm).mtime.toISOString()}.`);

const bad = results.filter((r) => r.maxDiff !== undefined && !(r.maxDiff <= TOLERANCE));
// A model ort cannot load or run is a finding (printed in the table), not a failure.
if (bad.length) {
  console.error(`\nFAIL: tract and onnxruntime-web disagree by more than ${TOLERANCE} on ` +
    bad.map((r) => `${r.name} (max |diff| ${r.maxDiff})`).join(", "));
  process.exit(1);
}
