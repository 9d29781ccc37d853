// Test helpers that run unchanged in the browser (www/parity.html, driven by
// tests/js/browser.test.mjs) and in node (the consumer script of tests/js/node.test.mjs), so
// both compute what they compare with the native CLI in exactly the same way.
// Pure functions of a Recommender: no DOM, no I/O.

/** Hex (as the native CLI writes a state) → bytes. */
export function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * The device pipeline's row for every request the native CLI's `recommend --requests-out`
 * wrote: the user's state restored from its bytes, then `recommendRow(state, options)`.
 * @param {import("../pkg/web/edgerec.js").Recommender} rec
 * @param {typeof import("../pkg/web/edgerec.js").UserState} UserState
 * @param {{ userId: number, state: string, options: object }[]} requests
 * @returns {Record<number, { ids: number[], reasons: string[], scores: number[], ranked: boolean }>}
 */
export function deviceRows(rec, UserState, requests) {
  const out = {};
  for (const req of requests) {
    const state = UserState.fromBytes(fromHex(req.state));
    try {
      const row = rec.recommendRow(state, req.options);
      out[req.userId] = {
        ids: row.items.map((r) => r.itemId),
        reasons: row.items.map((r) => r.reason),
        scores: row.items.map((r) => r.score),
        ranked: row.ranked,
      };
    } finally {
      state.free();
    }
  }
  return out;
}

/**
 * The bundle's ranker scores for `inputs` (RankerInput objects), as a plain array.
 * @param {import("../pkg/web/edgerec.js").Recommender} rec
 */
export function rankerScores(rec, inputs) {
  return Array.from(rec.rankerScores(inputs));
}

/**
 * Runs `fn` and describes what it threw, in a form that survives structured cloning out of a
 * browser page: null if nothing was thrown.
 * @returns {{ isError: boolean, code: string | null, message: string } | null}
 */
export function errorOf(fn) {
  try {
    const value = fn();
    value?.free?.();
    return null;
  } catch (err) {
    return { isError: err instanceof Error, code: err?.code ?? null, message: String(err?.message ?? err) };
  }
}
