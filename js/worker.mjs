// The worker side of `edgerec/worker`: the wasm, the synced model and the users' states live in
// a Web Worker, so loading a bundle, syncing and computing rows never block the page. Started
// by `EdgerecWorker.start()` (js/worker-client.mjs), which speaks this file's protocol:
//
//   request  { id, op, args }                  → reply { id, ok: true, value }
//                                                 or    { id, ok: false, error: { code, message } }
//   event    (a sync's onEvent, unasked)       → { event }
//
// Every op is a method of `ops` below. Policy stays in the model and the core: this file only
// routes calls to them and keeps the objects they return.

import * as edgerec from "../pkg/web/edgerec.js";
import { IndexedDbStore, MemoryStore, Model, ready } from "./sync-web.mjs";

/** UserState methods the page may call through a state handle. */
const STATE_METHODS = new Set([
  "fatiguedTitles",
  "finishedTitles",
  "history",
  "onboardingGenres",
  "recordCompletion",
  "recordImpressions",
  "recordPlay",
  "setMaturityLimit",
  "setOnboarding",
  "setProfile",
  "setUtcOffsetMinutes",
  "toBytes",
]);

let model = null; // a synced Model (open), or null
let loaded = null; // a Recommender from bundle bytes (load), or null
const states = new Map(); // handle → UserState
let nextState = 1;

function fail(code, message) {
  return Object.assign(new Error(message), { name: "EdgerecError", code });
}

function recommender() {
  const rec = model?.recommender ?? loaded;
  if (!rec) throw fail("no_model", "no model: call open() (sync) or load() (bundle bytes) first");
  return rec;
}

function stateOf(handle) {
  const state = states.get(handle);
  if (!state) throw fail("invalid_argument", `no user state ${handle} (freed, or made by another worker)`);
  return state;
}

function closeAll() {
  model?.close();
  model = null;
  loaded?.free();
  loaded = null;
}

function storeFrom(spec) {
  if (spec === undefined || spec === "memory") return new MemoryStore();
  if (typeof spec === "object" && spec !== null && typeof spec.indexedDb === "string") return new IndexedDbStore(spec.indexedDb);
  throw fail("invalid_argument", 'store must be "memory" or { indexedDb: "name" }');
}

const ops = {
  /** Opens (and, without an installed model, syncs) the channel: see `Model.open`. */
  async open(options) {
    if (typeof options !== "object" || options === null) throw fail("invalid_argument", "open() takes an options object");
    const { store, ...rest } = options;
    const opened = await Model.open({ ...rest, store: storeFrom(store), onEvent: (event) => postMessage({ event }) });
    closeAll();
    model = opened;
    return model.status;
  },
  /** A Recommender from bundle bytes (no sync). */
  async load(bytes, options) {
    await ready();
    const rec = new edgerec.Recommender(bytes, options);
    closeAll();
    loaded = rec;
    return ops.info();
  },
  sync() {
    if (!model) throw fail("no_model", "sync() needs open() first");
    return model.sync();
  },
  startPolling(options) {
    if (!model) throw fail("no_model", "startPolling() needs open() first");
    model.startPolling(options);
  },
  stopPolling() {
    model?.stopPolling();
  },
  status() {
    return model?.status ?? null;
  },
  info() {
    const rec = recommender();
    return {
      itemCount: rec.itemCount,
      modelVersion: rec.modelVersion,
      bundleSha256: rec.bundleSha256,
      release: rec.release() ?? null,
      ranker: rec.ranker() ?? null,
      memoryEstimate: rec.memoryEstimate,
    };
  },
  items() {
    return recommender().items();
  },
  genres() {
    return recommender().genres();
  },
  recommendRow(handle, options) {
    return recommender().recommendRow(stateOf(handle), options);
  },
  /** A new user state, empty or restored from bytes; returns its handle. */
  async newState(bytes) {
    await ready();
    const state = bytes == null ? new edgerec.UserState() : edgerec.UserState.fromBytes(bytes);
    const handle = nextState++;
    states.set(handle, state);
    return handle;
  },
  callState(handle, method, args) {
    if (!STATE_METHODS.has(method)) throw fail("invalid_argument", `UserState has no method ${method}`);
    const state = stateOf(handle);
    return state[method](...(Array.isArray(args) ? args : []));
  },
  stateInfo(handle) {
    const state = stateOf(handle);
    return { impressionCount: state.impressionCount, maturityLimit: state.maturityLimit ?? null };
  },
  freeState(handle) {
    states.get(handle)?.free();
    states.delete(handle);
  },
  close() {
    closeAll();
    for (const state of states.values()) state.free();
    states.clear();
  },
};

/** Typed arrays the reply owns (not views into wasm memory) go back without a copy. */
function transferables(value) {
  return ArrayBuffer.isView(value) && value.buffer instanceof ArrayBuffer ? [value.buffer] : [];
}

self.onmessage = async ({ data }) => {
  const { id, op, args } = data ?? {};
  try {
    const fn = Object.hasOwn(ops, op) ? ops[op] : null;
    if (!fn) throw fail("invalid_argument", `unknown operation ${op}`);
    const value = await fn(...(Array.isArray(args) ? args : []));
    postMessage({ id, ok: true, value }, transferables(value));
  } catch (err) {
    postMessage({ id, ok: false, error: { code: err?.code ?? "internal", message: String(err?.message ?? err) } });
  }
};
