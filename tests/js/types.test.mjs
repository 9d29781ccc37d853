// The TypeScript types say what the runtime does: tests/js/types/usage.ts uses the package the
// ways its runtime accepts (typed arrays where ids go, `maturityLimit` null, load options, the
// memory estimate, error codes) and, behind `@ts-expect-error`, the ways it refuses; `tsc
// --strict` must accept the file exactly (an unused `@ts-expect-error` is an error).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const tsc = `${root}node_modules/.bin/tsc`;

test("the package's TypeScript types match what the runtime accepts and refuses", () => {
  assert.ok(existsSync(tsc), `${tsc} is missing: run scripts/setup.sh`);
  assert.ok(existsSync(`${root}pkg/node/edgerec.d.ts`), "pkg/ is missing: run scripts/build-wasm.sh");
  const run = spawnSync(tsc, ["-p", "tests/js/types/tsconfig.json"], { cwd: root, encoding: "utf8" });
  assert.equal(run.status, 0, `tsc:\n${run.stdout}${run.stderr}`);
});
