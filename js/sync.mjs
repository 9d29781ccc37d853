// Model sync: keeps a device's model current from a release server (`edgerec serve`), verifying
// every byte with the core (the wasm `Release`) before it is used.
//
// Environment-neutral: `sync-node.mjs` and `sync-web.mjs` bind it to the node and web builds
// and to a persistent store (a directory, IndexedDB). See the README's "Releases" section.
//
// One sync: fetch the channel's manifest conditionally (If-None-Match), at most
// MAX_MANIFEST_BYTES; verify it (signature, key set, channel, expiry, rollback) before reading
// anything in it; download only the sections the store does not hold, each cut off past the
// length the manifest gives and checked against its sha256; rebuild the bundle, load it into a
// new Recommender, check it is the release the manifest names; only then persist the manifest
// (the switch) and swap — the old Recommender serves until then, and is freed after. Requests
// carry no user history or state: only the channel, the section hashes and an ETag.

/** The most bytes read for a manifest (the core's bound). */
export const MAX_MANIFEST_BYTES = 80 * 1024;

/** An error with a stable `code`, like the core's `EdgerecError`. */
export function syncError(code, message, extra = {}) {
  const err = new Error(message);
  err.name = "EdgerecError";
  err.code = code;
  Object.assign(err, extra);
  return err;
}

/** Reads a response body, refusing more than `max` bytes (the stream is cancelled there). */
export async function readBounded(response, max, onTooLong) {
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > max) throw onTooLong(bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw onTooLong(total);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** An in-memory store (tests, or a device without storage). */
export class MemoryStore {
  constructor() {
    this.meta = new Map();
    this.blobs = new Map();
  }
  async getMeta(name) {
    return this.meta.get(name) ?? null;
  }
  async putMeta(name, bytes) {
    this.meta.set(name, bytes.slice());
  }
  async getBlob(sha) {
    return this.blobs.get(sha) ?? null;
  }
  async hasBlob(sha) {
    return this.blobs.has(sha);
  }
  async putBlob(sha, bytes) {
    this.blobs.set(sha, bytes.slice());
  }
  async deleteBlob(sha) {
    this.blobs.delete(sha);
  }
  async listBlobs() {
    return [...this.blobs.keys()];
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Binds the sync client to a build of the package (`edgerec`: its `Release` and
 * `Recommender`) and a default store factory.
 */
export function makeModel(edgerec, ready = async () => {}) {
  return class Model {
    /**
     * Opens the installed model (offline if need be) and syncs once when there is none.
     * @param {{ url: string, publicKey: string, channel?: string, store?: object,
     *   fetch?: typeof fetch, now?: () => number, timeoutS?: number,
     *   maxBundleBytes?: number, memoryBudgetBytes?: number,
     *   onEvent?: (e: object) => void }} options
     *   `publicKey` is the trust root: the publisher's public key (64 hex digits) or `T:KEY,…`.
     */
    static async open(options) {
      await ready();
      const model = new Model(options);
      await model.#loadInstalled();
      if (!model.recommender) await model.sync();
      return model;
    }

    #opts;
    #store;
    #etag = null;
    #syncing = null;
    #timer = null;
    #failures = 0;
    #installed = null; // { version, label, expires, keySetSerial, sections: [sha] }

    constructor({
      url,
      publicKey,
      channel = "stable",
      store = new MemoryStore(),
      // Called unbound would throw "Illegal invocation" in browsers.
      fetch: fetchFn = (...args) => globalThis.fetch(...args),
      now = nowSeconds,
      timeoutS = 30,
      maxBundleBytes = 512 * 1024 * 1024,
      memoryBudgetBytes = undefined,
      onEvent = () => {},
    }) {
      if (typeof url !== "string" || !url) throw syncError("invalid_argument", "url is required");
      if (typeof publicKey !== "string" || !publicKey)
        throw syncError("invalid_argument", "publicKey (the trust root) is required");
      this.#opts = {
        base: url.replace(/\/+$/, ""),
        trust: publicKey,
        channel,
        fetch: fetchFn,
        now,
        timeoutS,
        maxBundleBytes,
        load: memoryBudgetBytes === undefined ? undefined : { memoryBudgetBytes },
        onEvent,
      };
      this.#store = store;
      /** The Recommender serving now (null until a model is installed). */
      this.recommender = null;
      /** What the client knows: see the README. */
      this.status = {
        channel,
        version: null,
        label: null,
        expires: null,
        stale: false,
        lastCheck: null,
        lastSuccess: null,
        lastError: null,
        lastRefused: null,
        downloadedBytes: 0,
      };
    }

    /** Reopens what the store holds: verified again (no expiry check), rebuilt, loaded. */
    async #loadInstalled() {
      const manifest = await this.#store.getMeta("manifest");
      if (!manifest) return;
      const state = await this.#readState();
      try {
        const release = edgerec.Release.verify(manifest, this.#opts.trust, {
          channel: this.#opts.channel,
          now: null,
          installedVersion: null,
          keySetSerial: state.keySetSerial ?? null,
        });
        const sections = release.sections();
        const parts = [];
        for (const s of sections) {
          const bytes = await this.#store.getBlob(s.sha256);
          if (!bytes) throw syncError("section_mismatch", `the store lost section ${s.tag}`);
          parts.push(bytes);
        }
        const rec = new edgerec.Recommender(release.assemble(parts), this.#opts.load);
        this.#install(release, rec, sections);
        release.free();
      } catch (err) {
        // An installed model that no longer verifies (a damaged store, a rotated root) is
        // dropped: the next sync installs the current one.
        this.status.lastError = describe(err);
        this.#emit({ type: "installed-refused", error: this.status.lastError });
      }
    }

    #install(release, rec, sections) {
      const old = this.recommender;
      this.recommender = rec;
      this.#installed = {
        version: release.version,
        label: release.label,
        expires: release.expires,
        keySetSerial: release.keySetSerial,
        sections: sections.map((s) => s.sha256),
      };
      Object.assign(this.status, {
        version: release.version,
        label: release.label,
        expires: release.expires,
      });
      this.#updateStale();
      if (old) old.free();
    }

    #updateStale() {
      const exp = this.#installed?.expires;
      this.status.stale = exp != null && exp < this.#opts.now();
    }

    async #readState() {
      const bytes = await this.#store.getMeta("state");
      if (!bytes) return {};
      try {
        return JSON.parse(dec.decode(bytes));
      } catch {
        return {};
      }
    }

    #emit(event) {
      try {
        this.#opts.onEvent(event);
      } catch {
        // A listener's error is not the sync's.
      }
    }

    /**
     * GETs `path` and hands the response to `read`, all within `timeoutS` (a server that
     * trickles its body times out too). Transport failures become `network` or `timeout`.
     */
    async #get(path, headers, read) {
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), this.#opts.timeoutS * 1000);
      try {
        const res = await this.#opts.fetch(`${this.#opts.base}${path}`, {
          headers,
          signal: ctrl.signal,
          cache: "no-store",
        });
        return await read(res);
      } catch (err) {
        if (err?.name === "EdgerecError") throw err;
        const code = ctrl.signal.aborted ? "timeout" : "network";
        throw syncError(code, `${path}: ${err?.message ?? err}`);
      } finally {
        clearTimeout(timer);
      }
    }

    /**
     * Checks for a new release and installs it. Never throws for server or network faults:
     * the result says what happened, `status` keeps it, and the old model keeps serving.
     * @returns {Promise<{ updated: boolean, version: number | null, downloadedBytes: number,
     *   error?: { code: string, message: string } }>}
     */
    sync() {
      this.#syncing ??= this.#syncOnce().finally(() => {
        this.#syncing = null;
      });
      return this.#syncing;
    }

    async #syncOnce() {
      const o = this.#opts;
      const now = o.now();
      this.status.lastCheck = now;
      let downloaded = 0;
      try {
        const headers = this.#etag && this.recommender ? { "If-None-Match": this.#etag } : {};
        const answer = await this.#get(`/v1/channels/${encodeURIComponent(o.channel)}/manifest`, headers, async (res) => {
          if (res.status === 304) {
            await res.body?.cancel?.();
            return null;
          }
          if (res.status !== 200) {
            await res.body?.cancel?.();
            throw syncError("http_error", `manifest: HTTP ${res.status}`, { status: res.status });
          }
          const bytes = await readBounded(res, MAX_MANIFEST_BYTES, (n) =>
            syncError("bad_manifest", `manifest longer than ${MAX_MANIFEST_BYTES} bytes (${n} read)`),
          );
          return { etag: res.headers.get("etag"), bytes };
        });
        if (answer === null) return this.#succeeded(now, false, 0);
        const { etag, bytes: manifest } = answer;
        downloaded += manifest.length;
        const state = await this.#readState();
        const release = edgerec.Release.verify(manifest, o.trust, {
          channel: o.channel,
          now,
          installedVersion: this.#installed?.version ?? null,
          keySetSerial: Math.max(state.keySetSerial ?? 0, this.#installed?.keySetSerial ?? 0) || null,
        });
        try {
          if (release.bundleLength > o.maxBundleBytes) {
            throw syncError("bad_manifest", `a ${release.bundleLength}-byte bundle, at most ${o.maxBundleBytes}`);
          }
          if (this.recommender && release.version === this.#installed.version) {
            this.#etag = etag;
            return this.#succeeded(now, false, downloaded);
          }
          const sections = release.sections();
          const parts = [];
          for (const [i, s] of sections.entries()) {
            let bytes = await this.#store.getBlob(s.sha256);
            if (!bytes) {
              bytes = await this.#download(s);
              downloaded += bytes.length;
              release.checkSection(i, bytes);
              await this.#store.putBlob(s.sha256, bytes);
            }
            parts.push(bytes);
          }
          const rec = new edgerec.Recommender(release.assemble(parts), this.#opts.load);
          const stamped = rec.release();
          if (!stamped || stamped.version !== release.version || stamped.channel !== release.channel) {
            rec.free();
            throw syncError("section_mismatch", "the bundle is not the release its manifest names");
          }
          // The switch: the manifest the store opens next time, then the state.
          await this.#store.putMeta("manifest", release.bytes);
          await this.#store.putMeta(
            "state",
            enc.encode(JSON.stringify({ keySetSerial: Math.max(state.keySetSerial ?? 0, release.keySetSerial) })),
          );
          this.#install(release, rec, sections);
          this.#etag = etag;
          await this.#collect();
          this.#emit({ type: "installed", version: release.version, downloadedBytes: downloaded });
          return this.#succeeded(now, true, downloaded);
        } finally {
          release.free();
        }
      } catch (err) {
        const error = describe(err);
        this.status.lastError = error;
        this.status.downloadedBytes += downloaded;
        if (REFUSALS.has(error.code)) this.status.lastRefused = { ...error, at: now };
        this.#updateStale();
        this.#emit({ type: "error", error });
        this.#failures += 1;
        return { updated: false, version: this.status.version, downloadedBytes: downloaded, error };
      }
    }

    #succeeded(now, updated, downloaded) {
      this.status.lastSuccess = now;
      this.status.lastError = null;
      this.status.downloadedBytes += downloaded;
      this.#failures = 0;
      this.#updateStale();
      return { updated, version: this.status.version, downloadedBytes: downloaded };
    }

    #download(section) {
      return this.#get(`/v1/sections/${section.sha256}`, {}, async (res) => {
        if (res.status !== 200) {
          await res.body?.cancel?.();
          throw syncError("http_error", `section ${section.tag}: HTTP ${res.status}`, { status: res.status });
        }
        return readBounded(res, section.length, (n) =>
          syncError("section_mismatch", `section ${section.tag}: more than the ${section.length} bytes the manifest lists (${n} read)`),
        );
      });
    }

    /** Drops blobs the installed release does not use. */
    async #collect() {
      const keep = new Set(this.#installed.sections);
      for (const sha of await this.#store.listBlobs()) {
        if (!keep.has(sha)) await this.#store.deleteBlob(sha);
      }
    }

    /**
     * Syncs every `intervalS` seconds (± `jitter` of it), backing off exponentially (with the
     * same jitter) after failures, up to `maxBackoffS`.
     */
    startPolling({ intervalS = 3600, jitter = 0.1, maxBackoffS = 6 * 3600 } = {}) {
      this.stopPolling();
      const schedule = () => {
        const base = this.#failures === 0 ? intervalS : Math.min(maxBackoffS, intervalS * 2 ** Math.min(this.#failures, 16));
        const delay = base * (1 + jitter * (2 * Math.random() - 1));
        this.#timer = setTimeout(async () => {
          await this.sync();
          if (this.#timer !== null) schedule();
        }, Math.max(0, delay * 1000));
        this.#timer?.unref?.();
      };
      schedule();
    }

    stopPolling() {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timer = null;
    }

    /** Stops polling and frees the Recommender. */
    close() {
      this.stopPolling();
      this.recommender?.free();
      this.recommender = null;
    }
  };
}

/** Codes meaning "the server answered, and the answer was refused" (not a transport fault). */
const REFUSALS = new Set([
  "bad_manifest",
  "bad_signature",
  "untrusted_key",
  "rollback",
  "expired",
  "wrong_channel",
  "section_mismatch",
  "truncated",
  "bad_magic",
  "unsupported_version",
  "checksum_mismatch",
  "malformed",
  "missing_section",
  "contract_mismatch",
  "over_budget",
]);

function describe(err) {
  return { code: err?.code ?? "internal", message: err?.message ?? String(err) };
}
