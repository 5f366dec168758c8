// graphret's web page: plain JavaScript against the server's JSON API (no build step).
// Text from the store is always set with textContent, never as HTML.
"use strict";

const state = {
  store: null,      // GET /store
  query: null,      // {kind: "id", id} or {kind: "upload", file}
  lastResult: null, // the last search's JSON
  modeRuns: {},     // mode -> {seconds, scanned, same, error} for the current query
  members: {method: null, community: null, offset: 0},
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function itemPath(id) {
  return "/items/" + String(id).split("/").map(encodeURIComponent).join("/");
}

function labelText(label) {
  if (label == null) return "";
  return Array.isArray(label) ? (label.length ? label.join("|") : "(none)") : String(label);
}

function showError(message) {
  const box = $("error");
  if (!message) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = message;
  box.hidden = false;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

// ---- the store -------------------------------------------------------------------------------
async function loadStore() {
  const store = await api("/store");
  state.store = store;
  $("store-info").textContent =
    `${store.name} · version ${store.version} · ${store.items} items · ${store.task}` + (store.thumbnails ? "" : " · no stored thumbnails");
  fillSelect($("mode"), store.modes, store.default_mode);
  fillSelect($("communities"), store.community_methods, store.community_methods[0]);
  $("communities-choice").hidden = store.community_methods.length === 0;
  fillSelect($("community-method"), store.community_methods, store.community_methods[0]);
  fillSelect($("space"), store.spaces, "default");
  $("space-choice").hidden = store.spaces.length < 2;
  const labels = $("label-filter");
  labels.replaceChildren(el("option", {value: "", text: "any"}));
  for (const name of store.filters.label || []) labels.append(el("option", {value: name, text: name}));
  const addLabel = $("add-label");
  addLabel.replaceChildren(el("option", {value: "", text: "none"}));
  if (store.task === "multiclass") for (const name of store.class_names) addLabel.append(el("option", {value: name, text: name}));
  const meta = $("metadata-filters");
  meta.replaceChildren();
  for (const [column, values] of Object.entries(store.filters)) {
    if (column === "label" || !values || values.length < 2) continue;
    const select = el("select", {"data-column": column, class: "metadata-filter"}, el("option", {value: "", text: "any"}));
    for (const value of values) select.append(el("option", {value: String(value), text: String(value)}));
    select.addEventListener("change", rerun);
    meta.append(el("label", {}, column + " ", select));
  }
  $("add-panel").hidden = !store.writable;
}

function fillSelect(select, values, chosen) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => el("option", {value: v, text: v})));
  select.value = values.includes(keep) ? keep : chosen;
}

// ---- options ---------------------------------------------------------------------------------
function filters() {
  const where = [];
  const label = $("label-filter").value;
  if (label) where.push(`label=${label}`);
  for (const select of document.querySelectorAll(".metadata-filter")) {
    if (select.value) where.push(`${select.dataset.column}=${select.value}`);
  }
  for (const part of $("where").value.split(";")) if (part.trim()) where.push(part.trim());
  return where;
}

function options(mode) {
  const opts = {k: parseInt($("k").value, 10) || 10, mode: mode || $("mode").value, where: filters()};
  if (state.store.community_methods.length) opts.communities = $("communities").value;
  if (state.store.spaces.length > 1) opts.space = $("space").value;
  if (opts.mode === "class" && !state.store.classifier) opts.class_source = "knn";  // a kNN vote where there is no classifier
  return opts;
}

// ---- searching -------------------------------------------------------------------------------
async function runSearch(query, mode) {
  const opts = options(mode);
  const started = performance.now();
  let result;
  if (query.kind === "id") {
    result = await api("/search", {method: "POST", headers: {"Content-Type": "application/json"},
                                   body: JSON.stringify({ids: [query.id], ...opts})});
  } else {
    const form = new FormData();
    form.append("files", query.file, query.file.name);
    for (const [key, value] of Object.entries(opts)) {
      if (Array.isArray(value)) value.forEach((v) => form.append(key, v));
      else if (value != null) form.append(key, String(value));
    }
    result = await api("/search/image", {method: "POST", body: form});
  }
  result.roundTrip = (performance.now() - started) / 1000;
  return result;
}

function sameLabelShare(entry) {
  const mine = labelText(entry.query.label);
  if (!mine || !entry.results.length) return null;
  return entry.results.filter((hit) => labelText(hit.label) === mine).length / entry.results.length;
}

// A search by stored id has an address: /?id=...&k=...&mode=... (the mode when one is chosen).
// Each new search pushes one history entry, so the back button steps through searches and a
// link opens the same results.
function searchAddress(query) {
  const params = new URLSearchParams({id: query.id, k: String(parseInt($("k").value, 10) || 10)});
  if ($("mode").value) params.set("mode", $("mode").value);
  return "/?" + params;
}

function applyAddress() {
  // the query the page's address names (setting k and mode from it), or null
  const params = new URLSearchParams(location.search);
  const id = params.get("id");
  if (!id) return null;
  if (params.get("k")) $("k").value = params.get("k");
  const mode = params.get("mode") || "";
  if ([...$("mode").options].some((option) => option.value === mode)) $("mode").value = mode;
  return {kind: "id", id};
}

async function search(query, {remember = true} = {}) {
  if (query) { state.query = query; state.modeRuns = {}; showQuery(query); }
  if (!state.query) return;
  showError(null);
  $("result-summary").textContent = "searching...";
  try {
    const result = await runSearch(state.query);
    state.lastResult = result;
    const entry = result.queries[0];
    state.modeRuns[result.mode] = {seconds: result.seconds, scanned: entry.scanned_fraction, same: sameLabelShare(entry)};
    showResults(result);
    showModeTable();
    if (remember && state.query.kind === "id") {
      const address = searchAddress(state.query);
      if (address !== location.pathname + location.search) history.pushState({search: address}, "", address);
    }
  } catch (error) {
    $("result-summary").textContent = "no results";
    $("results").replaceChildren();
    showError(error.message);
  } finally {
    document.body.dataset.searches = String(Number(document.body.dataset.searches || 0) + 1);
  }
}

function rerun() { if (state.query) search(); }

async function compareModes() {
  if (!state.query) { showError("choose a query first: drop an image or click a stored image"); return; }
  showError(null);
  state.modeRuns = {};
  for (const mode of state.store.modes) {
    try {
      const result = await runSearch(state.query, mode);
      const entry = result.queries[0];
      state.modeRuns[mode] = {seconds: result.seconds, scanned: entry.scanned_fraction, same: sameLabelShare(entry)};
    } catch (error) {
      state.modeRuns[mode] = {error: error.message};
    }
    showModeTable();
  }
}

function showModeTable() {
  const table = $("mode-table");
  const rows = Object.entries(state.modeRuns).map(([mode, run]) => {
    if (run.error) return el("tr", {"data-mode": mode}, el("td", {text: mode}), el("td", {colSpan: 3, class: "muted", text: run.error}));
    return el("tr", {"data-mode": mode},
      el("td", {text: mode}),
      el("td", {text: (run.seconds * 1000).toFixed(1)}),
      el("td", {text: (run.scanned * 100).toFixed(1) + "%"}),
      el("td", {text: run.same == null ? "" : (run.same * 100).toFixed(0) + "%"}));
  });
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = rows.length === 0;
}

function showQuery(query) {
  $("query-figure").hidden = false;
  const image = $("query-image");
  const dicom = $("query-dicom");
  const details = $("query-details");
  details.replaceChildren();
  if (query.kind === "id") {
    image.hidden = false; dicom.hidden = true;
    image.src = itemPath(query.id) + "/thumbnail";  // from the store: viewable when the sources have moved
    const full = el("a", {href: itemPath(query.id) + "/image", target: "_blank", rel: "noopener", text: "full image"});
    $("query-caption").replaceChildren(el("span", {class: "query-id", text: query.id}), " · ", full);
    api(itemPath(query.id)).then((item) => {
      const rows = [["label", labelText(item.label)], ["split", item.split]];
      for (const [method, c] of Object.entries(item.communities)) rows.push([method, String(c)]);
      for (const [key, value] of Object.entries(item.metadata)) if (value != null) rows.push([key, String(value)]);
      details.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v})]));
    }).catch(() => {});
  } else {
    const isDicom = /\.(dcm|dicom)$/i.test(query.file.name) || query.file.type === "application/dicom";
    image.hidden = isDicom; dicom.hidden = !isDicom;
    if (!isDicom) image.src = URL.createObjectURL(query.file);
    $("query-caption").replaceChildren(el("span", {class: "query-id", text: query.file.name}), " (uploaded)");
  }
}

function card(hit, {rank = null, same = false, onClick}) {
  const parts = [el("img", {src: itemPath(hit.id) + "/thumbnail", alt: hit.id, loading: "lazy"})];
  if (rank != null) parts.push(el("div", {class: "rank", text: `#${rank} · ${hit.score.toFixed(3)}`}));
  parts.push(el("div", {class: "label", text: labelText(hit.label) || "(no label)", title: labelText(hit.label)}));
  if (hit.community != null) parts.push(el("div", {class: "muted", text: `community ${hit.community}`}));
  const node = el("div", {class: "card" + (same ? " same" : ""), "data-id": hit.id, title: hit.id}, ...parts);
  node.addEventListener("click", onClick);
  return node;
}

function showResults(result) {
  const entry = result.queries[0];
  const mine = labelText(entry.query.label);
  const extra = entry.chosen_community != null ? ` · community ${entry.chosen_community}` :
    entry.predicted_class != null ? ` · predicted class ${entry.predicted_class}` : "";
  $("result-summary").textContent =
    `${result.mode} · top ${entry.results.length} · server ${(result.seconds * 1000).toFixed(1)} ms` +
    ` · round trip ${(result.roundTrip * 1000).toFixed(0)} ms · scanned ${(entry.scanned_fraction * 100).toFixed(1)}% of the archive` +
    `${extra} · version ${result.version}`;
  $("results").replaceChildren(...entry.results.map((hit) => {
    const node = card(hit, {rank: hit.rank, same: mine && labelText(hit.label) === mine,
                            onClick: () => search({kind: "id", id: hit.id})});
    node.classList.add("result");
    return node;
  }));
}

// ---- browsing stored images ------------------------------------------------------------------
async function browse(seed) {
  const params = new URLSearchParams({order: "random", seed: String(seed), limit: "24"});
  for (const w of filters()) params.append("where", w);
  try {
    const page = await api("/items?" + params);
    $("browse").replaceChildren(...page.items.map((item) =>
      card({id: item.id, label: item.label, community: null}, {onClick: () => search({kind: "id", id: item.id})})));
  } catch (error) {
    showError(error.message);
  }
}

// ---- adding ----------------------------------------------------------------------------------
async function addImages() {
  const files = $("add-files").files;
  if (!files.length) { $("add-status").textContent = "choose images first"; return; }
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  if ($("add-label").value) form.append("label", $("add-label").value);
  const token = $("token").value;
  sessionStorage.setItem("graphret-token", token);
  $("add-status").textContent = "adding...";
  try {
    const summary = await api("/add", {method: "POST", body: form, headers: {Authorization: "Bearer " + token}});
    $("add-status").textContent = `added ${summary.added} images: version ${summary.version}, ${summary.items} items`;
    await loadStore();
  } catch (error) {
    $("add-status").textContent = error.message;
  }
}

// ---- communities -----------------------------------------------------------------------------
async function loadCommunities() {
  const method = $("community-method").value;
  if (!method) { showError("this store has no communities"); return; }
  showError(null);
  try {
    const summary = await api("/communities");
    const shown = ["partition", "communities", "size_max", "size_median", "newman_modularity", "coverage", "label_purity", "label_nmi"];
    const columns = shown.filter((c) => summary.summary.length && c in summary.summary[0]);
    const cell = (value) => el("td", {text: typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : String(value ?? "")});
    const head = el("tr", {}, ...columns.map((c) => el("th", {text: c.replaceAll("_", " ")})));
    const body = summary.summary.map((row) => el("tr", {}, ...columns.map((c) => cell(row[c]))));
    $("partition-summary").replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
    const table = await api(`/communities/${encodeURIComponent(method)}?limit=300`);
    const largest = table.rows.length ? table.rows[0].size : 1;
    $("community-table").tBodies[0].replaceChildren(...table.rows.map((row) => {
      const tr = el("tr", {"data-community": String(row.community)},
        el("td", {text: String(row.community)}),
        el("td", {}, el("div", {class: "bar"}, el("span", {class: "fill", style: `width:${Math.max(2, 60 * row.size / largest)}px`}), String(row.size))),
        el("td", {text: row.dominant ?? ""}),
        el("td", {text: row.purity == null ? "" : (row.purity * 100).toFixed(0) + "%"}),
        el("td", {class: "muted", text: row.top_labels ?? ""}));
      tr.addEventListener("click", () => openCommunity(method, row.community, tr));
      return tr;
    }));
    $("community-map").src = "/communities/map.png";
  } catch (error) {
    showError(error.message);
  }
}

async function openCommunity(method, community, row) {
  for (const tr of document.querySelectorAll("#community-table tr.chosen")) tr.classList.remove("chosen");
  if (row) row.classList.add("chosen");
  try {
    const detail = await api(`/communities/${encodeURIComponent(method)}/${community}`);
    $("community-title").textContent = `${method} community ${community}: ${detail.size} images`;
    const total = Object.values(detail.labels).reduce((a, b) => a + b, 0) || 1;
    $("community-labels").replaceChildren(...Object.entries(detail.labels).slice(0, 10).map(([name, count]) =>
      el("div", {class: "bar"}, el("span", {class: "fill", style: `width:${Math.max(2, 160 * count / total)}px`}),
        `${name} ${count} (${(100 * count / total).toFixed(0)}%)`)));
    $("exemplars").replaceChildren(...detail.exemplars.map((item) =>
      card({id: item.id, label: item.label, community: null}, {onClick: () => searchFromCommunities(item.id)})));
    $("neighbours").replaceChildren(...detail.neighbours.map((n) =>
      el("li", {text: `community ${n.neighbour} (${n.neighbour_size} images${n.neighbour_dominant ? ", mostly " + n.neighbour_dominant : ""}): ${(n.share * 100).toFixed(0)}% of the cut`})));
    state.members = {method, community, offset: 0};
    $("members").replaceChildren();
    await moreMembers();
  } catch (error) {
    showError(error.message);
  }
}

async function moreMembers() {
  const {method, community, offset} = state.members;
  const page = await api(`/communities/${encodeURIComponent(method)}/${community}/members?offset=${offset}&limit=48`);
  $("members").append(...page.items.map((item) =>
    card({id: item.id, label: item.label, community: null}, {onClick: () => searchFromCommunities(item.id)})));
  state.members.offset = offset + page.items.length;
  $("more-members").hidden = state.members.offset >= page.total;
}

function searchFromCommunities(id) {
  showView("search-view");
  search({kind: "id", id});
}

// ---- wiring ----------------------------------------------------------------------------------
function showView(id) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== id;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === id);
  if (id === "communities-view" && !$("community-table").tBodies[0].children.length) loadCommunities();
}

function wire() {
  const drop = $("dropzone");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) search({kind: "upload", file: e.dataTransfer.files[0]});
  });
  $("file-input").addEventListener("change", (e) => {
    if (e.target.files.length) search({kind: "upload", file: e.target.files[0]});
  });
  for (const id of ["k", "mode", "communities", "space", "label-filter"]) $(id).addEventListener("change", rerun);
  $("label-filter").addEventListener("change", () => browse(0));
  $("where").addEventListener("change", rerun);
  $("compare").addEventListener("click", compareModes);
  let seed = 0;
  $("shuffle").addEventListener("click", () => browse(++seed));
  $("add-button").addEventListener("click", addImages);
  $("token").value = sessionStorage.getItem("graphret-token") || "";
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("community-method").addEventListener("change", loadCommunities);
  $("more-members").addEventListener("click", moreMembers);
  window.addEventListener("popstate", () => {  // back and forward: the search the address names
    const query = applyAddress();
    showView("search-view");
    if (query) search(query, {remember: false});
  });
}

async function start() {
  wire();
  try {
    await loadStore();
    await browse(0);
    const linked = applyAddress();  // a link to a search opens its results
    if (linked) await search(linked, {remember: false});
    document.body.dataset.ready = "true";
  } catch (error) {
    showError("cannot read the store: " + error.message);
  }
}

start();
