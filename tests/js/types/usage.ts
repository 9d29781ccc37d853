// What the package's TypeScript types must allow (everything here runs) and refuse (every
// `@ts-expect-error` line is something the runtime refuses): checked by tests/js/types.test.mjs
// with `tsc --noEmit --strict`. An unused `@ts-expect-error` fails the check, so types that grow
// looser than the runtime fail it too.
import { Recommender, UserState } from "../../../pkg/node/edgerec.js";
import type { EdgerecError, MemoryEstimate, Row, RowOptions } from "../../../pkg/node/edgerec.js";
import type { ModelInfo, WorkerOpenOptions } from "../../../js/worker-client.js";
import * as bundler from "../../../pkg/bundler/edgerec.js";
import * as web from "../../../pkg/web/edgerec.js";

declare const bytes: Uint8Array;

const rec = new Recommender(bytes);
const budgeted = new Recommender(bytes, { memoryBudgetBytes: 64 * 1024 * 1024 });
const estimate: MemoryEstimate = budgeted.memoryEstimate;
const total: number = estimate.total + estimate.file + estimate.sections + estimate.runtimes + estimate.request;

const state = new UserState();
state.recordPlay(1, 1_764_446_400, 0.9);
// Typed arrays the state returns go back in wherever ids are taken.
state.recordImpressions(state.history(), 1_764_446_400);
state.recordImpressions([1, 2, 3], 1_764_446_400);
state.setOnboarding(["Drama"], state.finishedTitles());
rec.rankerScores([{ dense: new Float32Array(3), history: state.history(), genres: [1, 2] }]);

// maturityLimit is a string or null, never undefined.
const limit: string | null = state.maturityLimit;

const options: RowOptions = { context: { device: "tv", timestamp: 1_764_446_400, utcOffsetMinutes: 60 }, k: 10 };
const row: Row = rec.recommendRow(state, options);
const first: number | undefined = row.items[0]?.itemId;

try {
  rec.recommendRow(state, options);
} catch (e) {
  const code: EdgerecError["code"] = (e as EdgerecError).code;
  const budget: boolean = code === "over_budget" || code === "invalid_argument";
  void budget;
}

const open: WorkerOpenOptions = { url: "https://models.example", publicKey: "00".repeat(32), memoryBudgetBytes: 1 << 26 };
declare const info: ModelInfo;
const held: number = info.memoryEstimate.total;

// @ts-expect-error devices are a closed set
rec.recommendRow(state, { context: { device: "toaster", timestamp: 0, utcOffsetMinutes: 0 } });
// @ts-expect-error an unknown load option is refused
new Recommender(bytes, { memoryBudget: 1 });
// @ts-expect-error ids are numbers
state.recordImpressions(["1"], 0);
// @ts-expect-error the state comes first
rec.recommendRow(options, state);
// @ts-expect-error not an error code the package throws
const wrong: EdgerecError["code"] = "oops";

// The browser and bundler entry is the web glue, initialised: its classes and types, no init().
const webState: web.UserState = new bundler.UserState();
const bundledRow: bundler.Row = new web.Recommender(bytes).recommendRow(webState, options);
const flavour: "simd" | "baseline" = bundler.wasmFlavour;
// @ts-expect-error the entry initialises itself: no initSync (nor a default init)
bundler.initSync(bytes);

void [total, limit, first, open, held, wrong, bundledRow, flavour];
