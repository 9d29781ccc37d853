// The client fleet of `edgerec loop`: the npm package's real client code — sync (`Model`), the
// device pipeline (`recommendRow` on each device's own `UserState`) and the event queue
// (`EventQueue` at privacy "full", assignment by `assignArm`) — driven by the simulated users of
// the Rust side over stdin/stdout, one JSON object per line each way (a request, its answer).
//
// Requests (`op`):
//   init   {now, url, publicKey, experiment, devices: [{deviceId, utcOffsetMinutes}]}
//          each device assigns itself an arm (assignArm), opens its queue; one synced Model per
//          arm channel serves the arm's devices (every device of an arm would download the same
//          bytes) -> {devices: [{deviceId, arm, channel}], channels: {channel: label}}
//   sync   {now} every arm's Model syncs -> {channels: {channel: label}}
//   row    {deviceId, now, device, k} the device's row -> {items: [itemId]}
//   shown  {deviceId, now, device, sessionId, items} an impression is recorded -> {rowId}
//   play   {deviceId, now, device, sessionId, itemId, rowId?, position?, watchedS, fraction,
//          end} play_start (from the row, if given), then completion or play_stop -> {}
//   search {deviceId, now, sessionId, tokens} -> {}
//   flush  every queue sends what it holds -> {sent, duplicates, rejected, failures, queued,
//          dropped}
//   close  -> the same counts, then the process exits
// An error answers {error: message} (the Rust side stops the loop).

import { createInterface } from "node:readline";

import edgerec from "../pkg/node/edgerec.js";
import { EventQueue, MemoryQueueStore, assignArm } from "../js/events-node.mjs";
import { Model } from "../js/sync-node.mjs";

let simNow = 0;
const now = () => simNow;
const models = new Map(); // channel -> Model
const devices = new Map(); // deviceId -> { state, queue, model, offset }

function device(id) {
  const d = devices.get(id);
  if (!d) throw new Error(`unknown device ${id}`);
  return d;
}

function labels() {
  const out = {};
  for (const [channel, model] of models) out[channel] = model.status.label;
  return out;
}

function counts() {
  const total = { sent: 0, duplicates: 0, rejected: 0, failures: 0, queued: 0, dropped: 0 };
  for (const d of devices.values()) {
    const s = d.queue.stats;
    for (const k of Object.keys(total)) total[k] += s[k];
  }
  return total;
}

const ops = {
  async init({ now: t, url, publicKey, experiment, devices: list }) {
    simNow = t;
    const answer = [];
    for (const { deviceId, utcOffsetMinutes } of list) {
      const { arm, channel, label } = assignArm(experiment, deviceId);
      if (!models.has(channel)) {
        models.set(channel, await Model.open({ url, publicKey, channel, now, timeoutS: 60 }));
      }
      const model = models.get(channel);
      const state = new edgerec.UserState();
      const queue = await EventQueue.open({
        url,
        deviceId,
        privacy: "full",
        state,
        edgerec,
        store: new MemoryQueueStore(),
        arm: label,
        modelVersion: () => model.status.label ?? "none",
        now,
        // A day's events of one device fit; the fleet flushes daily.
        maxEvents: 10_000,
      });
      devices.set(deviceId, { state, queue, model, offset: utcOffsetMinutes });
      answer.push({ deviceId, arm, channel });
    }
    return { devices: answer, channels: labels() };
  },

  async sync({ now: t }) {
    simNow = t;
    for (const [channel, model] of models) {
      const { error } = await model.sync();
      if (error) throw new Error(`sync of ${channel}: ${JSON.stringify(error)}`);
    }
    return { channels: labels() };
  },

  row({ deviceId, now: t, device: kind, k }) {
    simNow = t;
    const d = device(deviceId);
    const row = d.model.recommender.recommendRow(d.state, {
      context: { device: kind, timestamp: t, utcOffsetMinutes: d.offset },
      k,
    });
    return { items: row.items.map((r) => r.itemId) };
  },

  async shown({ deviceId, now: t, device: kind, sessionId, items }) {
    simNow = t;
    const rowId = `${deviceId}-${sessionId}-${t}`;
    await device(deviceId).queue.record({ type: "impression", clientTime: t, sessionId, rowId, items, device: kind });
    return { rowId };
  },

  async play({ deviceId, now: t, device: kind, sessionId, itemId, rowId, position, watchedS, fraction, end }) {
    simNow = t;
    const q = device(deviceId).queue;
    const from = rowId === undefined ? {} : { rowId, position };
    await q.record({ type: "play_start", clientTime: t, sessionId, itemId, device: kind, ...from });
    if (fraction >= 1) {
      await q.record({ type: "completion", clientTime: end, sessionId, itemId, device: kind });
    } else {
      await q.record({ type: "play_stop", clientTime: end, sessionId, itemId, watchedS, fraction });
    }
    return {};
  },

  async search({ deviceId, now: t, sessionId, tokens }) {
    simNow = t;
    await device(deviceId).queue.record({ type: "search", clientTime: t, sessionId, tokens });
    return {};
  },

  async flush() {
    for (const d of devices.values()) await d.queue.flush({ force: true });
    return counts();
  },

  async close() {
    return counts();
  },
};

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let answer;
  let op = null;
  try {
    const request = JSON.parse(line);
    op = request.op;
    const f = ops[op];
    if (!f) throw new Error(`unknown op ${op}`);
    answer = await f(request);
  } catch (err) {
    answer = { error: `${op ?? "request"}: ${err?.message ?? err}${err?.code ? ` (${err.code})` : ""}` };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (op === "close") break;
}
process.exit(0);
