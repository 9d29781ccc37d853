// The event queue for node: the node build of the package and a file store.
//
//   import { EventQueue, FileQueueStore } from "edgerec/events";
//   const queue = await EventQueue.open({ url, deviceId, privacy: "full", state,
//                                         store: new FileQueueStore("/var/lib/app/events.json") });

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

import edgerec from "../pkg/node/edgerec.js";
import * as core from "./events.mjs";

/** The queue in one JSON file, replaced atomically on every save. */
export class FileQueueStore {
  constructor(path) {
    this.path = path;
    this.n = 0;
  }
  async load() {
    try {
      return await readFile(this.path, "utf8");
    } catch (err) {
      if (err.code === "ENOENT") return null;
      throw err;
    }
  }
  async save(text) {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.${this.n++}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, this.path);
  }
}

/** `core.EventQueue` with the node build's `aggregateSessions`. */
export class EventQueue extends core.EventQueue {
  static async open(options) {
    return super.open({ edgerec, ...options });
  }
}

export const { DEFAULT_BATCH, DEFAULT_MAX_EVENTS, MemoryQueueStore, SESSION_WINDOW_S, newEventId } = core;
export const assignArm = edgerec.assignArm;
