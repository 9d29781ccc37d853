// Model sync for browsers and TV web runtimes (also inside a Web Worker): the web build of the
// package and an IndexedDB store.
//
//   import { Model, IndexedDbStore } from "edgerec/sync";
//   const model = await Model.open({ url, publicKey, store: new IndexedDbStore("edgerec") });

import init, * as edgerec from "../pkg/web/edgerec.js";
import { MAX_MANIFEST_BYTES, MemoryStore, makeModel } from "./sync.mjs";

let initialised = null;

/** A store in an IndexedDB database: object stores `meta` and `blobs`. */
export class IndexedDbStore {
  constructor(name = "edgerec-sync") {
    this.name = name;
    this.db = null;
  }
  async #open() {
    this.db ??= await new Promise((resolve, reject) => {
      const req = indexedDB.open(this.name, 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore("meta");
        req.result.createObjectStore("blobs");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return this.db;
  }
  async #run(store, mode, op) {
    const db = await this.#open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const req = op(tx.objectStore(store));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
  async getMeta(name) {
    return (await this.#run("meta", "readonly", (s) => s.get(name))) ?? null;
  }
  async putMeta(name, bytes) {
    await this.#run("meta", "readwrite", (s) => s.put(bytes, name));
  }
  async getBlob(sha) {
    return (await this.#run("blobs", "readonly", (s) => s.get(sha))) ?? null;
  }
  async hasBlob(sha) {
    return (await this.#run("blobs", "readonly", (s) => s.count(sha))) > 0;
  }
  async putBlob(sha, bytes) {
    await this.#run("blobs", "readwrite", (s) => s.put(bytes, sha));
  }
  async deleteBlob(sha) {
    await this.#run("blobs", "readwrite", (s) => s.delete(sha));
  }
  async listBlobs() {
    return (await this.#run("blobs", "readonly", (s) => s.getAllKeys())).map(String);
  }
}

/**
 * The web build, initialised once for every module of the package that uses it (a second
 * `init()` racing the first would instantiate the wasm twice): `const { UserState } = await ready();`.
 */
export async function ready() {
  initialised ??= init();
  await initialised;
  return edgerec;
}

export const Model = makeModel(edgerec, ready);
export { MAX_MANIFEST_BYTES, MemoryStore };
