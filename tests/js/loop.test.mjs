// The closed loop end to end (`edgerec loop`): simulated users of a synthetic world drive this
// package's client code (scripts/loop-fleet.mjs: sync, recommendRow, the event queue) in node
// against the real server, a pre-period day on the logging policy then A/B days in three arms
// retrained daily from what devices sent; then `edgerec ab report` on its event store.
//
//   node --test tests/js/loop.test.mjs
//
// Needs the CLI ($EDGEREC_BIN) and scripts/build-wasm.sh.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { REPO, requireCli, requirePackageBuild, runCli } from "./fixtures.mjs";

requirePackageBuild();
requireCli();

test("the closed loop runs the client against the server, retrains from devices' events, and reports per arm", () => {
  const out = mkdtempSync(join(tmpdir(), "edgerec-loop-"));
  // A small world and fast fits: what is checked is the loop, not the models' quality.
  const md = runCli(
    "loop",
    "--out", out,
    "--users", "600",
    "--items", "300",
    "--logged-days", "14",
    "--pre-days", "1",
    "--days", "2",
    "--no-tune",
    "--tower-epochs", "1",
    "--dataset", "loop",
    "--node", process.execPath,
    "--fleet", join(REPO, "scripts/loop-fleet.mjs"),
  );
  const r = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  assert.equal(readFileSync(join(out, "report.md"), "utf8"), md);
  assert.deepEqual(r.days.map((d) => d.phase), ["pre", "ab", "ab"]);

  // Every event went through a device's queue into the server, none refused or left behind,
  // and every play the users started came back out of the export.
  assert.deepEqual(
    { rejected: r.fleet.rejected, dropped: r.fleet.dropped, queued: r.fleet.queued, failures: r.fleet.failures },
    { rejected: 0, dropped: 0, queued: 0, failures: 0 },
  );
  const stats = JSON.parse(runCli("events", "stats", "--db", join(out, "events.db")));
  assert.equal(stats.events, r.fleet.sent);
  const plays = r.days.reduce((n, d) => n + d.plays, 0);
  assert.ok(plays > 100, `only ${plays} plays`);
  assert.equal(r.export.plays, plays);
  assert.equal(r.export.devices_linked, stats.devices);

  // Each A/B day's model was retrained on more positives than the day before: the events
  // devices sent reached training; a new release was published and synced.
  const [pre, day1, day2] = r.days;
  assert.ok(day1.positives > pre.positives, `${day1.positives} <= ${pre.positives}`);
  assert.ok(day2.positives > day1.positives, `${day2.positives} <= ${day1.positives}`);
  for (const arm of ["popular", "full"]) {
    assert.notEqual(day2.models[arm], day1.models[arm], arm);
    assert.match(day2.models[arm], new RegExp(`\\.${arm}\\.`));
  }

  // The split is what the shares say; the oracle (the world's true utility) is the ceiling.
  assert.equal(r.ab.srm.mismatch, false, JSON.stringify(r.ab.srm));
  for (const a of r.ab.arms) assert.ok(a.devices > 50, `${a.arm}: ${a.devices} devices`);
  const engagement = Object.fromEntries(r.ab.arms.map((a) => [a.arm, a.metrics.engagement_rate]));
  assert.ok(engagement.oracle.value > engagement.popular.value, JSON.stringify(engagement));
  assert.ok(engagement.oracle.value > engagement.full.value, JSON.stringify(engagement));
  const [share] = r.oracle_share;
  assert.ok(share > 0 && share < 1, `share ${share}`);
  // Offline metrics for every arm on every day (the pre-period's: before the test).
  for (const d of r.days) assert.deepEqual(d.offline.map((o) => o.arm), ["popular", "full", "oracle"]);
  assert.equal(r.agreement.length, 3);

  // `edgerec ab report` on the loop's output writes its report with plots.
  const ab = join(out, "ab");
  runCli(
    "ab", "report",
    "--db", join(out, "events.db"),
    "--experiment", join(out, "experiment.json"),
    "--start", String(r.start),
    "--out", ab,
  );
  assert.match(readFileSync(join(ab, "report.md"), "utf8"), /Sample-ratio check/);
  const plots = readdirSync(join(ab, "plots")).filter((f) => f.endsWith(".svg"));
  assert.ok(plots.length >= 4, plots.join(", "));
  assert.ok(existsSync(join(out, "accounts.csv")));
  // The loop wrote the same report itself.
  assert.equal(readFileSync(join(out, "ab", "report.md"), "utf8"), readFileSync(join(ab, "report.md"), "utf8"));
});
