// The edgerec demo page. Everything runs in the page: the web build of the npm package
// (served at /pkg/), one model bundle (served at /models/), and recommend() on every change.
//
// Query parameters: ?bundle=URL loads another bundle (the browser test uses it to check that a
// refused bundle's error code is shown).

import init, { Recommender } from "/pkg/edgerec.js";

/** Device values of the API, with their labels. */
const DEVICES = { tv: "TV", desktop: "Desktop", mobile: "Mobile", tablet: "Tablet" };
const SEARCH_LIMIT = 8;

const $ = (id) => document.getElementById(id);

/** What the user has chosen; every control writes here, then calls update(). */
const state = {
  rec: null,
  /** CatalogItem[] with a lowercase `key` for search; `byId` indexes the same objects. */
  catalog: [],
  byId: new Map(),
  genreOrder: [],
  device: "desktop",
  genres: new Set(),
  /** Item ids, oldest first, as recommend() expects. */
  history: [],
};

main().catch((err) => {
  console.error(err);
  showError(err);
  $("recs").dataset.state = "error";
  document.querySelector(".layout").inert = true;
  for (const id of ["model-version", "item-count", "recommend-ms"]) $(id).textContent = "—";
});

async function main() {
  const bundleUrl = new URLSearchParams(location.search).get("bundle") ?? "/models/bundle.edgerec";
  const [, bytes] = await Promise.all([init(), fetchBytes(bundleUrl)]);
  const rec = (state.rec = new Recommender(bytes));

  state.catalog = rec.items().map((item) => ({ ...item, key: item.title.toLowerCase() }));
  state.byId = new Map(state.catalog.map((item) => [item.itemId, item]));
  state.genreOrder = rec.genres();
  $("model-version").textContent = rec.modelVersion;
  $("item-count").textContent = String(rec.itemCount);

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
  renderHistory();
  update();
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

/** Reads the controls, calls recommend() and renders the row; errors go to the banner. */
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

  let recs;
  const start = performance.now();
  try {
    recs = state.rec.recommend(state.history, context, k, genres);
  } catch (err) {
    showError(err);
    return;
  }
  const ms = performance.now() - start;

  hideError();
  $("recommend-ms").textContent = `${ms.toFixed(2)} ms`;
  $("k-shown").textContent = String(recs.length);
  renderCards(recs);
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
    source.textContent = r.source;
    source.classList.add(`source-${r.source}`);
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

function setUpSearch() {
  const input = $("search");
  const results = $("search-results");
  const matches = () => {
    const query = input.value.trim().toLowerCase();
    if (query === "") return [];
    const watched = new Set(state.history);
    const found = [];
    for (const item of state.catalog) {
      if (item.key.includes(query) && !watched.has(item.itemId)) {
        found.push(item);
        if (found.length === SEARCH_LIMIT) break;
      }
    }
    return found;
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

/** Shows an error and its code in the banner (until the next successful recommend()). */
function showError(err) {
  $("error-code").textContent = err?.code ?? "error";
  $("error-message").textContent = err?.message ?? String(err);
  $("error").hidden = false;
}

function hideError() {
  $("error").hidden = true;
}
