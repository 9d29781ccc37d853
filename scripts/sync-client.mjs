#!/usr/bin/env node
// A device syncing from a release server, in a terminal: opens (or installs) the channel's
// model into a directory store, prints its status and a top-10 for a new user who likes
// comedies, and exits. What the demo shows beside the page.
//
//   node scripts/sync-client.mjs --url http://127.0.0.1:8080 --public-key KEY [--channel stable] [--store DIR]

import { parseArgs } from "node:util";

import { DirectoryStore, Model } from "../js/sync-node.mjs";
import edgerec from "../pkg/node/edgerec.js";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    "public-key": { type: "string" },
    channel: { type: "string", default: "stable" },
    store: { type: "string", default: "artifacts/client" },
  },
});
if (!values.url || !values["public-key"]) {
  console.error("usage: sync-client.mjs --url URL --public-key KEY [--channel C] [--store DIR]");
  process.exit(2);
}

const model = await Model.open({
  url: values.url,
  publicKey: values["public-key"],
  channel: values.channel,
  store: new DirectoryStore(values.store),
});
const result = await model.sync();
const s = model.status;
console.log(
  `client: ${s.channel} version ${s.version} (${s.label}), ` +
    `${result.updated ? "updated" : "up to date"}, ${s.downloadedBytes} bytes downloaded` +
    (s.lastError ? `; last error ${s.lastError.code}: ${s.lastError.message}` : ""),
);
if (!model.recommender) process.exit(1);
const state = new edgerec.UserState();
const genres = model.recommender.genres();
state.setOnboarding(genres.includes("Comedy") ? ["Comedy"] : genres.slice(0, 1), []);
const context = { device: "tv", timestamp: Math.floor(Date.now() / 1000), utcOffsetMinutes: 0 };
const row = model.recommender.recommendRow(state, { context, k: 10 });
for (const [i, item] of row.items.entries()) console.log(`  ${i + 1}. ${item.title} — ${item.reason}`);
state.free();
model.close();
