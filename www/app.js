// The edgerec demo page. Everything runs in the page: the web build of the npm package
// (served at /pkg/web/), a model, and the device pipeline (Recommender.recommendRow:
// candidates → features → ranker → rerank) on every change. The user's state (watch history,
// onboarding picks) is a UserState kept as bytes in IndexedDB: it never leaves the browser,
// and a reload restores it.
//
// Where the model comes from (the "Model source" panel says which path is active):
//   - signed sync, given ?key=TRUST_ROOT: the page opens the model with the package's sync
//     client (/js/sync-web.mjs, `Model.open({ url: location.origin, publicKey, channel,
//     store: IndexedDbStore })`) from the release store `edgerec serve --store` answers at
//     /v1/…, polls it (`startPolling`) and swaps its recommender when a new version installs.
//     A reload opens the installed release from IndexedDB, offline if need be. If no release
//     can be installed (no release server here, a refused manifest), the page loads the bundle
//     file below instead and keeps polling.
//   - the bundle file, otherwise: /models/bundle.edgerec fetched once (any static server, e.g.
//     scripts/serve.mjs).
//
// Query parameters:
//   ?key=KEY        the trust root the release is verified against: the publisher's public key
//                   (64 hex digits, `edgerec keys generate` prints it) or `T:KEY,KEY,…`;
//                   scripts/demo.sh prints the page's address with it
//   &channel=NAME   the release channel (default stable)
//   &poll=SECONDS   how often to check for a new release (default 60)
//   ?bundle=URL     load that bundle file directly, never syncing (e.g.
//                   /models/bundle-ranked.edgerec, the one with a ranker; the browser test uses
//                   it to check that a refused bundle's error code is shown)
//
// The page and the sync client import the package by the same URL, /pkg/web/edgerec.js (where
// the npm package keeps its web build beside js/): one module instance, so the UserState the
// page builds fits the Recommender the sync client installs.

import init, { Recommender, UserState } from "/pkg/web/edgerec.js";

/** Device values of the API, with their labels. */
const DEVICES = { tv: "TV", desktop: "Desktop", mobile: "Mobile", tablet: "Tablet" };
const SEARCH_LIMIT = 8;
const DEFAULT_BUNDLE = "/models/bundle.edgerec";
const SYNC_CLIENT = "/js/sync-web.mjs";
/** The IndexedDB database the sync client keeps the installed release in. */
const MODEL_DB = "edgerec-demo-model";

const $ = (id) => document.getElementById(id);

/** What the user has chosen; every control writes here, then calls update(). */
const state = {
  /** The sync client's Model (signed sync), or null. */
  model: null,
  /** A Recommender loaded from a bundle file (the fallback path), or null. */
  fileRec: null,
  /** Which path is active: { mode: "sync" | "file", channel?, pollS?, bundleUrl?, why? }. */
  source: { mode: "loading" },
  /** CatalogItem[] with a lowercase `key` for search; `byId` indexes the same objects. */
  catalog: [],
  byId: new Map(),
  genreOrder: [],
  device: "desktop",
  genres: new Set(),
  /** Item ids, oldest first. */
  history: [],
};

/**
 * The Recommender serving now. Read it on every use: the sync client frees the one it replaces.
 */
const currentRec = () => state.model?.recommender ?? state.fileRec;

main().catch((err) => {
  console.error(err);
  showError(err);
  renderSource();
  $("recs").dataset.state = "error";
  document.querySelector(".layout").inert = true;
  for (const id of ["model-version", "item-count", "recommend-ms"]) $(id).textContent = "—";
});

async function main() {
  await init();
  await openModel(new URLSearchParams(location.search));
  readCatalog(currentRec());

  setUpDevice();
  setUpGenres();
  setUpSearch();
  $("when").value = localDateTimeValue(new Date());
  $("when").addEventListener("change", update);
  $("k").addEventListener("input", update);
  $("clear-history").addEventListener("click", () => {
    state.history = [];
    renderHistory();
    update();
  });
  await restoreState();
  renderHistory();
  update();
  renderSource();
  if (state.model) {
    $("sync-now").addEventListener("click", async () => {
      $("sync-now").disabled = true;
      await state.model.sync();
      $("sync-now").disabled = false;
      renderSource();
    });
    state.model.startPolling({ intervalS: state.source.pollS, jitter: 0.1 });
    // Polls that find nothing new raise no event: refresh the times shown once a second.
    setInterval(renderSource, 1000);
  }
}

// ---------------------------------------------------------------- the model: sync or file

/**
 * Opens the model: through the sync client when the page is given a trust root (?key=) and no
 * ?bundle=, else (or when sync installs nothing) from a bundle file.
 */
async function openModel(params) {
  const bundleUrl = params.get("bundle");
  const key = params.get("key");
  if (bundleUrl === null && key) {
    const channel = params.get("channel") || "stable";
    const poll = Number(params.get("poll"));
    const pollS = Number.isFinite(poll) && poll >= 1 ? poll : 60;
    state.source = { mode: "sync", channel, pollS };
    renderSource();
    let why;
    try {
      const { Model, IndexedDbStore } = await import(SYNC_CLIENT);
      state.model = await Model.open({
        url: location.origin,
        publicKey: key,
        channel,
        store: new IndexedDbStore(MODEL_DB),
        onEvent: onSyncEvent,
      });
      if (state.model.recommender) return;
      const e = state.model.status.lastError;
      why = e ? `${e.code}: ${e.message}` : "no release installed";
    } catch (err) {
      // No sync client at /js/, or no IndexedDB: the bundle file, without sync.
      console.warn("model sync unavailable", err);
      state.model = null;
      why = `the sync client did not start (${err?.code ?? err?.name ?? "error"}: ${err?.message ?? err})`;
    }
    state.source = { ...state.source, mode: "file", bundleUrl: DEFAULT_BUNDLE, why };
  } else {
    state.source = {
      mode: "file",
      bundleUrl: bundleUrl ?? DEFAULT_BUNDLE,
      why: bundleUrl === null ? "no ?key=: give the page a trust root to sync signed releases" : "?bundle= given",
    };
  }
  renderSource();
  state.fileRec = new Recommender(await fetchBytes(state.source.bundleUrl));
}

/** The sync client's events: a new release installed swaps the row's model. */
function onSyncEvent(event) {
  // Events raised inside Model.open come before state.model is set: main() reads that model.
  if (!state.model) return;
  if (event.type === "installed") {
    if (state.fileRec) {
      state.fileRec.free();
      state.fileRec = null;
    }
    state.source = { ...state.source, mode: "sync", bundleUrl: undefined, why: undefined };
    readCatalog(currentRec());
    setUpGenres();
    syncGenres();
    renderHistory();
    update();
  }
  renderSource();
}

/** Reads the catalog, genres and model facts of `rec` (at start, and after a swap). */
function readCatalog(rec) {
  state.catalog = rec.items().map((item) => ({ ...item, key: item.title.toLowerCase() }));
  state.byId = new Map(state.catalog.map((item) => [item.itemId, item]));
  state.genreOrder = rec.genres();
  $("model-version").textContent = rec.modelVersion;
  $("item-count").textContent = String(rec.itemCount);
}

/** Shows which path serves the model and, with sync, the client's status. */
function renderSource() {
  const { mode, channel, pollS, bundleUrl, why } = state.source;
  const panel = $("sync");
  panel.dataset.mode = mode;
  const status = state.model?.status;
  let text;
  if (mode === "sync") {
    text = `Signed release from this server, channel ${channel}: verified in the page, kept in IndexedDB, checked every ${pollS} s.`;
  } else if (mode === "file") {
    text = `Bundle file ${bundleUrl}, fetched once (${why}).`;
    if (state.model) text += ` Still checking channel ${channel} for a signed release every ${pollS} s.`;
  } else {
    text = "…";
  }
  $("sync-mode").textContent = text;
  $("sync-status").hidden = !status;
  $("sync-now").hidden = !state.model;
  if (!status) return;
  panel.dataset.version = String(status.version ?? "");
  const time = (s) => (s == null ? "—" : new Date(s * 1000).toLocaleString());
  const fault = (e) => (e ? `${e.code}: ${e.message}` : "none");
  $("sync-version").textContent = status.version == null ? "none installed" : String(status.version);
  $("sync-label").textContent = status.label ?? "—";
  $("sync-last-check").textContent = time(status.lastCheck);
  $("sync-last-success").textContent = time(status.lastSuccess);
  $("sync-stale").textContent =
    status.expires == null ? "—" : `${status.stale ? "yes, expired" : "no, expires"} ${time(status.expires)}`;
  $("sync-refused").textContent = status.lastRefused
    ? `${fault(status.lastRefused)} (${time(status.lastRefused.at)})`
    : "none";
  $("sync-error").textContent = fault(status.lastError);
}

// ---------------------------------------------------------------- local state (IndexedDB)

const DB = { name: "edgerec-demo", store: "state", key: "user" };

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB.name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(DB.store);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function dbRequest(mode, op) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const req = op(db.transaction(DB.store, mode).objectStore(DB.store));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } finally {
    db.close();
  }
}

/** Restores the history and picks saved by the last visit; a corrupt blob is refused whole. */
async function restoreState() {
  let bytes;
  try {
    bytes = await dbRequest("readonly", (s) => s.get(DB.key));
  } catch (err) {
    console.warn("IndexedDB unavailable; the state will not persist", err);
    return;
  }
  if (!bytes) return;
  let saved;
  try {
    saved = UserState.fromBytes(new Uint8Array(bytes));
  } catch (err) {
    showError(err); // corrupt_state / unsupported_state_version: start afresh, lose nothing else
    return;
  }
  state.history = Array.from(saved.history()).filter((id) => state.byId.has(id));
  for (const g of saved.onboardingGenres()) if (state.genreOrder.includes(g)) state.genres.add(g);
  saved.free();
  syncGenres();
}

/** The page's choices as the device's UserState: one finished play a day, oldest first. */
function userState(context, genres) {
  const s = new UserState();
  const n = state.history.length;
  state.history.forEach((id, i) => s.recordCompletion(id, context.timestamp - (n - i) * 86_400, state.device));
  s.setOnboarding(genres, []);
  s.setUtcOffsetMinutes(context.utcOffsetMinutes);
  return s;
}

function saveState(s) {
  const bytes = s.toBytes();
  const saved = { plays: s.playCount, genres: s.onboardingGenres().length };
  dbRequest("readwrite", (store) => store.put(bytes, DB.key))
    .then(() => {
      // For tests and curious readers: what the last completed save holds.
      document.body.dataset.savedPlays = String(saved.plays);
      document.body.dataset.savedGenres = String(saved.genres);
    })
    .catch((err) => console.warn("not saved", err));
}

async function fetchBytes(url) {
  let res;
  try {
    res = await fetch(url);
  } catch (err) {
    throw withCode(new Error(`GET ${url}: ${err.message}`), "fetch_failed");
  }
  if (!res.ok) throw withCode(new Error(`GET ${url}: HTTP ${res.status}`), "fetch_failed");
  return new Uint8Array(await res.arrayBuffer());
}

function withCode(err, code) {
  err.code = code;
  return err;
}

// ---------------------------------------------------------------- recommend

/** Reads the controls, calls recommendRow() and renders the row; errors go to the banner. */
function update() {
  const when = new Date($("when").value);
  const at = Number.isNaN(when.getTime()) ? new Date() : when;
  const context = {
    device: state.device,
    timestamp: Math.floor(at.getTime() / 1000),
    // The offset in force at that local time (daylight saving included).
    utcOffsetMinutes: -at.getTimezoneOffset(),
  };
  const k = Number($("k").value);
  const genres = state.genreOrder.filter((g) => state.genres.has(g));

  let row;
  const s = userState(context, genres);
  try {
    row = currentRec().recommendRow(s, { context, k });
    saveState(s);
  } catch (err) {
    showError(err);
    return;
  } finally {
    s.free();
  }

  hideError();
  const t = row.timings;
  $("recommend-ms").textContent = `${t.totalMs.toFixed(2)} ms`;
  $("stage-ms").textContent =
    `candidates ${t.candidatesMs.toFixed(2)} · features ${t.featuresMs.toFixed(2)} · ` +
    `ranker ${t.rankingMs.toFixed(2)} · rerank ${t.rerankMs.toFixed(2)} ms — ${row.candidates} candidates, ` +
    (row.ranked ? "ranked by the bundle's ranker" : "blend order (this bundle has no ranker)");
  $("k-shown").textContent = String(row.items.length);
  renderCards(row.items);
}

function renderCards(recs) {
  const template = $("card-template").content;
  const cards = recs.map((r, i) => {
    const card = template.firstElementChild.cloneNode(true);
    card.dataset.itemId = String(r.itemId);
    const set = (cls, text) => (card.querySelector(`.${cls}`).textContent = text);
    set("rank", String(i + 1));
    set("title", r.title);
    set("year", r.year ?? "year unknown");
    set("reason", r.reason);
    set("score", `score ${r.score.toFixed(4)}`);
    const source = card.querySelector(".source");
    source.textContent = r.placedBy;
    source.title = r.sources.map((x) => `${x.source} #${x.rank}`).join(", ");
    source.classList.add(`source-${r.placedBy}`);
    card.querySelector(".tags").append(...r.genres.map((g) => tag(g)));
    return card;
  });
  const list = $("recs");
  list.replaceChildren(...cards);
  list.dataset.state = "ready";
}

function tag(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

// ---------------------------------------------------------------- controls

function setUpDevice() {
  const group = $("device");
  for (const [device, label] of Object.entries(DEVICES)) {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "radio");
    button.textContent = label;
    button.dataset.device = device;
    button.addEventListener("click", () => {
      state.device = device;
      syncDevice();
      update();
    });
    group.append(button);
  }
  syncDevice();
}

function syncDevice() {
  for (const button of $("device").children) {
    button.setAttribute("aria-checked", String(button.dataset.device === state.device));
  }
}

function setUpGenres() {
  const chips = state.genreOrder.map((genre) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.textContent = genre;
    chip.setAttribute("aria-pressed", "false");
    chip.addEventListener("click", () => {
      const on = !state.genres.has(genre);
      if (on) state.genres.add(genre);
      else state.genres.delete(genre);
      chip.setAttribute("aria-pressed", String(on));
      update();
    });
    return chip;
  });
  $("genres").replaceChildren(...chips);
}

/** Shows the chosen genres on their chips (after a restore). */
function syncGenres() {
  for (const chip of $("genres").children) {
    chip.setAttribute("aria-pressed", String(state.genres.has(chip.textContent)));
  }
}

function setUpSearch() {
  const input = $("search");
  const results = $("search-results");
  // Titles containing the query, the exact title first, then titles starting with it, then
  // the rest, each in catalog order: "Contact" finds Contact before Star Trek: First Contact.
  const matches = () => {
    const query = input.value.trim().toLowerCase();
    if (query === "") return [];
    const watched = new Set(state.history);
    const tiers = [[], [], []];
    for (const item of state.catalog) {
      if (item.key.includes(query) && !watched.has(item.itemId)) {
        const tier = item.key === query ? 0 : item.key.startsWith(query) ? 1 : 2;
        tiers[tier].push(item);
      }
    }
    return tiers.flat().slice(0, SEARCH_LIMIT);
  };
  const add = (item) => {
    state.history.push(item.itemId);
    input.value = "";
    showResults();
    renderHistory();
    update();
  };
  const showResults = () => {
    const found = matches();
    results.replaceChildren(
      ...found.map((item) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.tabIndex = -1;
        const title = document.createElement("span");
        title.textContent = item.title;
        const genres = document.createElement("small");
        genres.textContent = [item.year ?? "year unknown", ...item.genres].join(" · ");
        li.append(title, genres);
        // mousedown, not click: it fires before the input's blur hides the list.
        li.addEventListener("mousedown", (event) => {
          event.preventDefault();
          add(item);
        });
        return li;
      }),
    );
    results.hidden = found.length === 0;
    return found;
  };
  input.addEventListener("input", showResults);
  input.addEventListener("focus", showResults);
  input.addEventListener("blur", () => (results.hidden = true));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      const [first] = matches();
      if (first) add(first);
    } else if (event.key === "Escape") {
      input.value = "";
      showResults();
    }
  });
}

function renderHistory() {
  const items = state.history.map((itemId, index) => {
    const item = state.byId.get(itemId);
    const li = document.createElement("li");
    const title = document.createElement("span");
    title.textContent = item ? item.title : `item ${itemId}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.title = "Remove from history";
    remove.setAttribute("aria-label", `Remove ${title.textContent}`);
    remove.addEventListener("click", () => {
      state.history.splice(index, 1);
      renderHistory();
      update();
    });
    li.append(title, remove);
    return li;
  });
  $("history").replaceChildren(...items);
  $("history-count").textContent = String(state.history.length);
  $("history-empty").hidden = state.history.length > 0;
  $("clear-history").hidden = state.history.length === 0;
}

// ---------------------------------------------------------------- helpers

/** `YYYY-MM-DDTHH:MM` in local time, the format of <input type="datetime-local">. */
function localDateTimeValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** Shows an error and its code in the banner (until the next successful recommendRow()). */
function showError(err) {
  $("error-code").textContent = err?.code ?? "error";
  $("error-message").textContent = err?.message ?? String(err);
  $("error").hidden = false;
}

function hideError() {
  $("error").hidden = true;
}
