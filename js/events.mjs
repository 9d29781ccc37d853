// Event queue: what the device showed and played, recorded in its own state at once and, as
// far as the user's privacy level allows, sent to the server (`edgerec serve --events`).
//
// Environment-neutral: `events-node.mjs` and `events-web.mjs` bind it to a persistent store
// (a file, IndexedDB) and to page-hide flushing. See the README's "Events and A/B tests".
//
//   const queue = await EventQueue.open({ url, deviceId, privacy: "metrics", state, edgerec, store });
//   queue.record({ type: "impression", rowId, items, device: "tv" });   // state updated now
//   await queue.flush();                                                 // or startFlushing()
//
// Privacy levels (the core's `edgerec::events::Privacy`):
//   "none"    — nothing leaves the device; events update the state and are not kept.
//   "metrics" — only per-session aggregates (`aggregateSessions`): counts and seconds, no title
//               ids, no search text. The events stay on the device until their session closes.
//   "full"    — the events themselves, with title ids, for training.
//
// The queue is bounded (`maxEvents`, default 10,000: a few days of heavy use); when full the
// oldest events are dropped and counted (`stats.dropped`, also reported on every batch's
// answer). It is persisted after every change, sent in batches of `batchSize`, retried with
// exponential backoff and full jitter on network errors and 5xx, and deduplicated by id (the
// client never queues an id twice; the server stores an id once, so a retry after a lost answer
// counts once). A batch answered 2xx leaves the queue (its refused events, listed in the answer,
// are counted in `stats.rejected`); one answered 4xx is dropped and counted too — it can never
// succeed.

/** Default cap on queued events. */
export const DEFAULT_MAX_EVENTS = 10_000;
/** Default events (or sessions) per request: well under the server's 2 MiB body limit. */
export const DEFAULT_BATCH = 200;
/** What a page-hide flush may send in one keepalive request (browsers cap them at 64 KiB). */
export const KEEPALIVE_BYTES = 60 * 1024;
/** A session closes after this long without events (the core's session window). */
export const SESSION_WINDOW_S = 30 * 60;
/** Seconds of a play that count it as watched in the `metrics` aggregates. */
export const DEFAULT_WATCHED_S = 600;

const SCHEMA = "edgerec-events/1";
const LEVELS = ["none", "metrics", "full"];

function queueError(code, message) {
  const err = new Error(message);
  err.name = "EdgerecError";
  err.code = code;
  return err;
}

/** A store that forgets on reload (tests, or a device without storage). */
export class MemoryQueueStore {
  constructor() {
    this.saved = null;
  }
  async load() {
    return this.saved;
  }
  async save(text) {
    this.saved = text;
  }
}

/** A random event id: 16 bytes of the platform's CSPRNG as hex. */
export function newEventId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class EventQueue {
  #o;
  #events = [];
  #ids = new Set();
  #stats = { recorded: 0, queued: 0, sent: 0, duplicates: 0, rejected: 0, dropped: 0, failures: 0 };
  #session = { id: 0, last: -Infinity };
  #retryAt = 0;
  #attempt = 0;
  #flushing = null;
  #timer = null;

  /**
   * Options: `url` (the server's base URL), `deviceId` (pseudonymous; the A/B assignment hashes
   * it), `privacy` ("none" | "metrics" | "full"), `state` (the `UserState` events are recorded
   * in), `edgerec` (the package: `aggregateSessions`), `store` ({load, save}), and optionally
   * `modelVersion` (a string or a function returning the current one), `arm` (the A/B label),
   * `maxEvents`, `batchSize`, `watchedThresholdS`, `backoff` ({baseMs, maxMs}), `fetch`,
   * `now` (unix seconds), `random` (in [0, 1)).
   */
  static async open(options) {
    const q = new this(options);
    await q.#load();
    return q;
  }

  constructor(options) {
    const o = {
      maxEvents: DEFAULT_MAX_EVENTS,
      batchSize: DEFAULT_BATCH,
      watchedThresholdS: DEFAULT_WATCHED_S,
      modelVersion: "unknown",
      arm: undefined,
      backoff: { baseMs: 1_000, maxMs: 300_000 },
      fetch: (...args) => globalThis.fetch(...args),
      now: () => Math.floor(Date.now() / 1000),
      random: Math.random,
      ...options,
    };
    if (!LEVELS.includes(o.privacy)) {
      throw queueError("invalid_argument", `privacy must be one of ${LEVELS.join(", ")}, got ${o.privacy}`);
    }
    if (typeof o.deviceId !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(o.deviceId)) {
      throw queueError("invalid_argument", "deviceId must be 1 to 64 of A-Z a-z 0-9 . _ -");
    }
    if (!Number.isInteger(o.maxEvents) || o.maxEvents < 1) {
      throw queueError("invalid_argument", "maxEvents must be a positive integer");
    }
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > 1000) {
      throw queueError("invalid_argument", "batchSize must be within 1..=1000 (the server's cap)");
    }
    this.#o = o;
  }

  /** The privacy level. */
  get privacy() {
    return this.#o.privacy;
  }

  /** Counts: recorded, queued, sent, duplicates, rejected, dropped (queue full), failures. */
  get stats() {
    return { ...this.#stats, queued: this.#events.length };
  }

  /** The current session id: a new one after SESSION_WINDOW_S without events. */
  session(t = this.#o.now()) {
    if (t - this.#session.last > SESSION_WINDOW_S) {
      this.#session = { id: this.#session.id + 1, last: t };
    }
    this.#session.last = Math.max(this.#session.last, t);
    return this.#session.id;
  }

  /**
   * Records an event: `{type, ...fields}` as `EdgerecEvent`, with `id`, `clientTime`,
   * `sessionId`, `modelVersion` and `arm` filled in when absent. The state is updated first
   * (an invalid event throws the core's `invalid_argument` and is neither applied nor kept),
   * whatever the privacy level; then the event is queued unless the level is "none". Returns
   * the complete event.
   */
  async record(partial) {
    const o = this.#o;
    const clientTime = partial.clientTime ?? o.now();
    const event = {
      id: partial.id ?? newEventId(),
      clientTime,
      sessionId: partial.sessionId ?? this.session(clientTime),
      modelVersion: partial.modelVersion ?? (typeof o.modelVersion === "function" ? o.modelVersion() : o.modelVersion),
      ...(o.arm !== undefined && partial.arm === undefined ? { arm: o.arm } : {}),
      ...partial,
    };
    o.state.recordEvent(event);
    this.#stats.recorded += 1;
    if (o.privacy === "none" || this.#ids.has(event.id)) return event;
    this.#events.push(event);
    this.#ids.add(event.id);
    while (this.#events.length > o.maxEvents) {
      const gone = this.#events.shift();
      this.#ids.delete(gone.id);
      this.#stats.dropped += 1;
    }
    await this.#save();
    return event;
  }

  /** Seconds until the next attempt is allowed (0: now). */
  get retryInS() {
    return Math.max(0, Math.ceil((this.#retryAt - Date.now()) / 1000));
  }

  /**
   * Sends what is queued, batch by batch, until the queue is empty or a request fails (then
   * the next attempt waits: exponential backoff with full jitter). Concurrent calls share one
   * flush. `{ keepalive: true }` sends one request of at most KEEPALIVE_BYTES with fetch's
   * `keepalive` (what a hidden page may still send). Resolves to the stats.
   */
  flush({ keepalive = false, force = false } = {}) {
    if (this.#flushing) return this.#flushing;
    this.#flushing = this.#flush(keepalive, force).finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #flush(keepalive, force) {
    const o = this.#o;
    if (o.privacy === "none") return this.stats;
    if (!force && Date.now() < this.#retryAt) return this.stats;
    if (o.privacy === "full") {
      for (;;) {
        const request = this.#nextEvents(keepalive);
        if (!request) break;
        if (!(await this.#send(request, keepalive))) break;
        const done = new Set(request.ids);
        this.#events = this.#events.filter((e) => !done.has(e.id));
        for (const id of done) this.#ids.delete(id);
        await this.#save();
        if (keepalive) break;
      }
      return this.stats;
    }
    // metrics: every session's aggregate so far, once per flush (the server keeps the largest
    // of each count, so a session sent again as it grows counts once).
    const sessions = o.edgerec.aggregateSessions(this.#events, o.watchedThresholdS);
    for (let i = 0; i < sessions.length; i += o.batchSize) {
      const chunk = sessions.slice(i, i + o.batchSize);
      const body = JSON.stringify({ schema: SCHEMA, privacy: "metrics", deviceId: o.deviceId, sessions: chunk });
      if (!(await this.#send({ body, count: chunk.length }, keepalive))) return this.stats;
      this.#dropClosed(new Set(chunk.map((s) => s.sessionId)));
      await this.#save();
      if (keepalive) break;
    }
    return this.stats;
  }

  /** POSTs one request; whether it settled (2xx or 4xx: leave the queue) or must be retried. */
  async #send(request, keepalive) {
    const o = this.#o;
    let response;
    try {
      response = await o.fetch(new URL("/v1/events", o.url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: request.body,
        keepalive,
      });
    } catch {
      this.#failed();
      return false;
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    if (response.status >= 500 || response.status === 429 || answer === null) {
      this.#failed();
      return false;
    }
    this.#attempt = 0;
    this.#retryAt = 0;
    if (response.ok || response.status === 422) {
      this.#stats.sent += answer.accepted ?? 0;
      this.#stats.duplicates += answer.duplicates ?? 0;
      this.#stats.rejected += (answer.rejected ?? []).length;
    } else {
      // Another 4xx: this batch can never succeed.
      this.#stats.rejected += request.count;
    }
    return true;
  }

  /** The oldest events, at most `batchSize` (and KEEPALIVE_BYTES for a keepalive request). */
  #nextEvents(keepalive) {
    const o = this.#o;
    if (this.#events.length === 0) return null;
    let n = Math.min(o.batchSize, this.#events.length);
    for (;;) {
      const events = this.#events.slice(0, n);
      const body = JSON.stringify({ schema: SCHEMA, privacy: "full", deviceId: o.deviceId, events });
      if (!keepalive || body.length <= KEEPALIVE_BYTES || n === 1) {
        return { body, count: n, ids: events.map((e) => e.id) };
      }
      n = Math.max(1, Math.floor(n / 2));
    }
  }

  /** Drops the events of the reported sessions that have closed; an open one keeps its events. */
  #dropClosed(reported) {
    const now = this.#o.now();
    const last = new Map();
    for (const e of this.#events) {
      last.set(e.sessionId, Math.max(last.get(e.sessionId) ?? -Infinity, e.clientTime));
    }
    const closed = (s) => reported.has(s) && now - last.get(s) > SESSION_WINDOW_S;
    const keep = [];
    for (const e of this.#events) {
      if (closed(e.sessionId)) this.#ids.delete(e.id);
      else keep.push(e);
    }
    this.#events = keep;
  }

  #failed() {
    const { baseMs, maxMs } = this.#o.backoff;
    this.#stats.failures += 1;
    const cap = Math.min(maxMs, baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt += 1;
    // Full jitter: a fleet that lost the server does not come back in step.
    this.#retryAt = Date.now() + Math.floor(this.#o.random() * cap);
  }

  /** Flushes every `intervalS` seconds (and after a backoff ends); `stopFlushing` ends it. */
  startFlushing({ intervalS = 60 } = {}) {
    this.stopFlushing();
    const tick = async () => {
      await this.flush().catch(() => {});
      const wait = Math.max(intervalS * 1000, this.#retryAt - Date.now());
      this.#timer = setTimeout(tick, wait);
      this.#timer.unref?.();
    };
    this.#timer = setTimeout(tick, 0);
    this.#timer.unref?.();
  }

  stopFlushing() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #save() {
    const text = JSON.stringify({
      v: 1,
      events: this.#events,
      stats: this.#stats,
      session: this.#session.last === -Infinity ? { id: this.#session.id, last: null } : this.#session,
    });
    await this.#o.store.save(text);
  }

  async #load() {
    const text = await this.#o.store.load();
    if (text === null || text === undefined) return;
    let saved;
    try {
      saved = JSON.parse(text);
    } catch {
      return; // a corrupt queue is dropped whole: the state already holds the events
    }
    if (saved?.v !== 1 || !Array.isArray(saved.events)) return;
    for (const e of saved.events.slice(-this.#o.maxEvents)) {
      if (e && typeof e.id === "string" && !this.#ids.has(e.id)) {
        this.#events.push(e);
        this.#ids.add(e.id);
      }
    }
    for (const k of Object.keys(this.#stats)) {
      if (Number.isFinite(saved.stats?.[k])) this.#stats[k] = saved.stats[k];
    }
    if (Number.isInteger(saved.session?.id)) {
      this.#session = { id: saved.session.id, last: saved.session.last ?? -Infinity };
    }
  }
}
