// Model sync for node: the node build of the package and a directory store.
//
//   import { Model, DirectoryStore } from "edgerec/sync";
//   const model = await Model.open({ url, publicKey, channel: "stable",
//                                    store: new DirectoryStore("/var/lib/app/edgerec") });
//   model.recommender.recommendRow(state, options);
//   model.startPolling({ intervalS: 3600, jitter: 0.1 });

import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

import edgerec from "../pkg/node/edgerec.js";
import { MAX_MANIFEST_BYTES, MemoryStore, makeModel, syncError } from "./sync.mjs";

/** A store in a directory: `manifest`, `state`, `sections/<sha256>`; writes are atomic. */
export class DirectoryStore {
  constructor(dir) {
    this.dir = dir;
  }
  async #write(path, bytes) {
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  }
  async #read(path) {
    try {
      return new Uint8Array(await readFile(path));
    } catch (err) {
      if (err.code === "ENOENT") return null;
      throw err;
    }
  }
  #blob(sha) {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw syncError("invalid_argument", `not a sha256: ${sha}`);
    return join(this.dir, "sections", sha);
  }
  async getMeta(name) {
    return this.#read(join(this.dir, name));
  }
  async putMeta(name, bytes) {
    await mkdir(this.dir, { recursive: true });
    await this.#write(join(this.dir, name), bytes);
  }
  async getBlob(sha) {
    return this.#read(this.#blob(sha));
  }
  async hasBlob(sha) {
    return (await this.getBlob(sha)) !== null;
  }
  async putBlob(sha, bytes) {
    await mkdir(join(this.dir, "sections"), { recursive: true });
    await this.#write(this.#blob(sha), bytes);
  }
  async deleteBlob(sha) {
    await rm(this.#blob(sha), { force: true });
  }
  async listBlobs() {
    try {
      return (await readdir(join(this.dir, "sections"))).filter((n) => /^[0-9a-f]{64}$/.test(n));
    } catch (err) {
      if (err.code === "ENOENT") return [];
      throw err;
    }
  }
}

export const Model = makeModel(edgerec);
export { MAX_MANIFEST_BYTES, MemoryStore };
