// Types of `edgerec/worker` (js/worker-client.mjs).
import type { CatalogItem, MemoryEstimate, RankerInfo, Row, RowOptions } from "../pkg/web/edgerec.js";

/** What every call rejects with. */
export interface EdgerecWorkerError extends Error {
  name: "EdgerecError";
  /** The core's or the sync's error code, `no_model` before open()/load(), `internal` if the worker died. */
  code: string;
}

/** The sync client's status (see the README's model sync section). */
export interface SyncStatus {
  channel: string;
  version: number | null;
  label: string | null;
  expires: number | null;
  stale: boolean;
  lastCheck: number | null;
  lastSuccess: number | null;
  lastError: { code: string; message: string } | null;
  lastRefused: { code: string; message: string; at: number } | null;
  downloadedBytes: number;
}

export interface SyncResult {
  updated: boolean;
  version: number | null;
  downloadedBytes: number;
  error?: { code: string; message: string };
}

export interface WorkerOpenOptions {
  url: string;
  /** The trust root: the publisher's public key (64 hex digits) or `T:KEY,…`. */
  publicKey: string;
  channel?: string;
  /** Where synced sections are kept: "memory" (default) or an IndexedDB database. */
  store?: "memory" | { indexedDb: string };
  timeoutS?: number;
  maxBundleBytes?: number;
  /** As `new Recommender(bytes, { memoryBudgetBytes })`: a release estimated above it is refused (`over_budget`). */
  memoryBudgetBytes?: number;
}

export interface ModelInfo {
  itemCount: number;
  modelVersion: string;
  bundleSha256: string;
  release: { version: number; channel: string; publishedAt: number } | null;
  ranker: RankerInfo | null;
  memoryEstimate: MemoryEstimate;
}

export class WorkerUserState {
  readonly handle: number;
  recordPlay(itemId: number, timestamp: number, fraction: number, watchedSeconds?: number | null, device?: string | null): Promise<void>;
  recordCompletion(itemId: number, timestamp: number, device?: string | null): Promise<void>;
  recordImpressions(itemIds: number[] | Uint32Array, timestamp: number): Promise<void>;
  setProfile(profile: { age?: number | null; gender?: "f" | "m" | "x" | null; country?: string | null; language?: string | null }): Promise<void>;
  setOnboarding(genres: string[], itemIds: number[] | Uint32Array): Promise<void>;
  setMaturityLimit(limit?: string | null): Promise<void>;
  setUtcOffsetMinutes(minutes: number): Promise<void>;
  history(): Promise<Uint32Array>;
  finishedTitles(): Promise<Uint32Array>;
  fatiguedTitles(minShown: number): Promise<Uint32Array>;
  onboardingGenres(): Promise<string[]>;
  toBytes(): Promise<Uint8Array>;
  info(): Promise<{ impressionCount: number; maturityLimit: string | null }>;
  free(): Promise<void>;
}

export class EdgerecWorker {
  static start(options?: { worker?: Worker; onEvent?: (event: { type: string; [key: string]: unknown }) => void }): EdgerecWorker;
  onEvent: (event: { type: string; [key: string]: unknown }) => void;
  call(op: string, ...args: unknown[]): Promise<unknown>;
  open(options: WorkerOpenOptions): Promise<SyncStatus>;
  load(bytes: Uint8Array, options?: { transfer?: boolean; memoryBudgetBytes?: number }): Promise<ModelInfo>;
  sync(): Promise<SyncResult>;
  startPolling(options?: { intervalS?: number; jitter?: number; maxBackoffS?: number }): Promise<void>;
  stopPolling(): Promise<void>;
  status(): Promise<SyncStatus | null>;
  info(): Promise<ModelInfo>;
  items(): Promise<CatalogItem[]>;
  genres(): Promise<string[]>;
  newState(bytes?: Uint8Array | null): Promise<WorkerUserState>;
  recommendRow(state: WorkerUserState, options: RowOptions): Promise<Row>;
  terminate(): Promise<void>;
}
