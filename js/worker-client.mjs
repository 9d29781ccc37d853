// `edgerec/worker`: the recommender in a Web Worker, with a Promise API, so loading and syncing
// a model and computing rows never block the page (a 20k-title bundle takes longer to load
// than a frame). For browsers and TV web runtimes with module workers (Chrome 80, Safari 15,
// Firefox 114 and later).
//
//   import { EdgerecWorker } from "edgerec/worker";
//   const worker = EdgerecWorker.start();
//   await worker.open({ url, publicKey, store: { indexedDb: "edgerec" } });  // sync, as Model.open
//   worker.startPolling({ intervalS: 3600 });
//   const user = await worker.newState(savedBytes);        // or newState() for a new user
//   await user.recordPlay(itemId, nowS, 0.9, 5400, "tv");
//   const row = await worker.recommendRow(user, { context: { device: "tv", timestamp: nowS } });
//   localStorage.edgerecState = toHex(await user.toBytes());
//
// Errors reject with an Error whose `name` is "EdgerecError" and `code` is the core's code
// (plus `no_model` before a model is opened or loaded). The worker script is js/worker.mjs.

/** A user's state held in the worker; every UserState method, as a Promise. */
export class WorkerUserState {
  #worker;
  constructor(worker, handle) {
    this.#worker = worker;
    /** The worker's handle for this state. */
    this.handle = handle;
  }
  #call(method, ...args) {
    return this.#worker.call("callState", this.handle, method, args);
  }
  recordPlay(itemId, timestamp, fraction, watchedSeconds = null, device = null) {
    return this.#call("recordPlay", itemId, timestamp, fraction, watchedSeconds, device);
  }
  recordCompletion(itemId, timestamp, device = null) {
    return this.#call("recordCompletion", itemId, timestamp, device);
  }
  recordImpressions(itemIds, timestamp) {
    return this.#call("recordImpressions", itemIds, timestamp);
  }
  setProfile(profile) {
    return this.#call("setProfile", profile);
  }
  setOnboarding(genres, itemIds) {
    return this.#call("setOnboarding", genres, itemIds);
  }
  setMaturityLimit(limit = null) {
    return this.#call("setMaturityLimit", limit);
  }
  setUtcOffsetMinutes(minutes) {
    return this.#call("setUtcOffsetMinutes", minutes);
  }
  history() {
    return this.#call("history");
  }
  finishedTitles() {
    return this.#call("finishedTitles");
  }
  fatiguedTitles(minShown) {
    return this.#call("fatiguedTitles", minShown);
  }
  onboardingGenres() {
    return this.#call("onboardingGenres");
  }
  /** The state's bytes, to persist on the device (`newState(bytes)` restores it). */
  toBytes() {
    return this.#call("toBytes");
  }
  /** `{ impressionCount, maturityLimit }`. */
  info() {
    return this.#worker.call("stateInfo", this.handle);
  }
  free() {
    return this.#worker.call("freeState", this.handle);
  }
}

export class EdgerecWorker {
  #worker;
  #pending = new Map();
  #next = 1;

  /**
   * Starts the worker: js/worker.mjs next to this module, or `worker` if given (e.g. one a
   * bundler built). `onEvent` receives the sync's events (installed, error, …).
   * @param {{ worker?: Worker, onEvent?: (event: object) => void }} [options]
   */
  static start({ worker, onEvent } = {}) {
    return new EdgerecWorker(worker ?? new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" }), onEvent);
  }

  constructor(worker, onEvent = () => {}) {
    this.#worker = worker;
    this.onEvent = onEvent;
    worker.onmessage = ({ data }) => {
      if (data?.event) {
        try {
          this.onEvent(data.event);
        } catch {
          // A listener's error is not the worker's.
        }
        return;
      }
      const waiting = this.#pending.get(data?.id);
      if (!waiting) return;
      this.#pending.delete(data.id);
      if (data.ok) waiting.resolve(data.value);
      else waiting.reject(Object.assign(new Error(data.error.message), { name: "EdgerecError", code: data.error.code }));
    };
    worker.onerror = (event) => this.#failAll("internal", `the worker failed: ${event.message ?? "unknown error"}`);
    worker.onmessageerror = () => this.#failAll("internal", "a worker message could not be read");
  }

  #failAll(code, message) {
    for (const waiting of this.#pending.values()) {
      waiting.reject(Object.assign(new Error(message), { name: "EdgerecError", code }));
    }
    this.#pending.clear();
  }

  /** Calls `op` in the worker (see js/worker.mjs); `transfer` lists buffers handed over. */
  call(op, ...args) {
    return this.#post(op, args, []);
  }

  #post(op, args, transfer) {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, op, args }, transfer);
    });
  }

  /**
   * Opens a synced channel, as `Model.open` (url, publicKey, channel, timeoutS, maxBundleBytes,
   * memoryBudgetBytes),
   * with `store` either "memory" (default) or `{ indexedDb: name }`. Resolves to the status.
   */
  open(options) {
    return this.call("open", options);
  }
  /**
   * Loads a bundle from its bytes (no sync). With `transfer`, the bytes' buffer is moved to the
   * worker instead of copied (the caller's array becomes empty); `memoryBudgetBytes` as in
   * `new Recommender(bytes, options)`. Resolves to `info()`.
   */
  load(bytes, { transfer = false, memoryBudgetBytes } = {}) {
    const options = memoryBudgetBytes === undefined ? undefined : { memoryBudgetBytes };
    return this.#post("load", [bytes, options], transfer ? [bytes.buffer] : []);
  }
  sync() {
    return this.call("sync");
  }
  startPolling(options = {}) {
    return this.call("startPolling", options);
  }
  stopPolling() {
    return this.call("stopPolling");
  }
  /** The sync status (null without open()). */
  status() {
    return this.call("status");
  }
  /** `{ itemCount, modelVersion, bundleSha256, release, ranker }` of the serving model. */
  info() {
    return this.call("info");
  }
  items() {
    return this.call("items");
  }
  genres() {
    return this.call("genres");
  }
  /** A user state in the worker: empty, or restored from `toBytes()` output. */
  async newState(bytes = null) {
    return new WorkerUserState(this, await this.call("newState", bytes));
  }
  /** `Recommender.recommendRow` for `state` (a WorkerUserState), with the same options. */
  recommendRow(state, options) {
    return this.call("recommendRow", state.handle, options);
  }
  /** Frees the model and every state, then stops the worker. */
  async terminate() {
    try {
      await this.call("close");
    } finally {
      this.#failAll("internal", "the worker was terminated");
      this.#worker.terminate();
    }
  }
}
