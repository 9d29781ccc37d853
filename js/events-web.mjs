// The event queue for browsers and TV web runtimes: the web build of the package, an
// IndexedDB store, and a flush when the page is hidden (fetch keepalive).
//
//   import { EventQueue, IndexedDbQueueStore, flushOnHide, ready } from "edgerec/events";
//   const { UserState } = await ready();   // the web build, initialised
//   const queue = await EventQueue.open({ url, deviceId, privacy: "metrics", state,
//                                         store: new IndexedDbQueueStore("edgerec-events") });
//   flushOnHide(queue);

import * as edgerec from "../pkg/web/edgerec.js";
import * as core from "./events.mjs";
import { ready } from "./sync-web.mjs";

/** The queue as one record of an IndexedDB database. */
export class IndexedDbQueueStore {
  constructor(name = "edgerec-events") {
    this.name = name;
    this.db = null;
  }
  async #open() {
    this.db ??= await new Promise((resolve, reject) => {
      const req = indexedDB.open(this.name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore("queue");
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return this.db;
  }
  async #tx(mode, f) {
    const db = await this.#open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction("queue", mode);
      const req = f(tx.objectStore("queue"));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
  async load() {
    return (await this.#tx("readonly", (s) => s.get("queue"))) ?? null;
  }
  async save(text) {
    await this.#tx("readwrite", (s) => s.put(text, "queue"));
  }
}

/** `core.EventQueue` with the web build's `aggregateSessions` (initialised on first open). */
export class EventQueue extends core.EventQueue {
  static async open(options) {
    await ready();
    return super.open({ edgerec, ...options });
  }
}

/**
 * Flushes what fits in one keepalive request when the page is hidden (tab switched, app
 * backgrounded, page closed): the request outlives the page. Returns a function that stops it.
 */
export function flushOnHide(queue, doc = globalThis.document) {
  const onChange = () => {
    if (doc.visibilityState === "hidden") queue.flush({ keepalive: true, force: true }).catch(() => {});
  };
  doc.addEventListener("visibilitychange", onChange);
  return () => doc.removeEventListener("visibilitychange", onChange);
}

export { ready };
export const { DEFAULT_BATCH, DEFAULT_MAX_EVENTS, KEEPALIVE_BYTES, MemoryQueueStore, SESSION_WINDOW_S, newEventId } = core;
export const assignArm = (...args) => edgerec.assignArm(...args);
