// Lode web UI: search, symbol pages with a call graph, and index status. Talks to the REST API under /v1.
// Every value from the server is inserted as text (never as HTML).
"use strict";

const PAGE_SIZE = 20;
const STATUS_REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, ...options });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  return search.toString();
}

function showError(error) {
  const box = $("error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

const cite = (item) => (item.external ? "(external)" : `${item.path}:${item.start_line}-${item.end_line}`);
const symbolHref = (name, repo) => `#/symbol?${query({ name, repo })}`;

// ---- search ---------------------------------------------------------------------------------------------

// Query words and their camelCase / snake_case parts, lower-cased: what the code-aware tokenizer also matches.
function queryTerms(q) {
  const terms = new Set();
  for (const word of q.match(/[A-Za-z0-9_]+/g) || []) {
    terms.add(word.toLowerCase());
    for (const part of word.split(/_|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/)) terms.add(part.toLowerCase());
  }
  return [...terms].filter((t) => t.length >= 2).sort((a, b) => b.length - a.length);
}

function highlighted(text, terms) {
  if (!terms.length) return [text];
  const escaped = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(${escaped.join("|")})`, "gi");
  return text.split(pattern).map((part, i) => (i % 2 ? el("mark", {}, part) : part));
}

const searchState = { params: null, offset: 0 };

function renderHits(result, terms) {
  const list = $("results");
  for (const hit of result.hits) {
    const name = hit.name_path || hit.name || hit.kind;
    const title = hit.name_path
      ? el("a", { class: "name", href: symbolHref(hit.name_path, hit.repo) }, name)
      : el("span", { class: "name" }, name);
    list.append(el("li", { class: "hit" },
      el("div", { class: "hit-head" },
        el("span", { class: "loc" }, cite(hit)), " ", el("span", { class: "kind" }, hit.kind), " ", title,
        el("span", { class: "meta" }, ` ${hit.repo} · ${hit.language} · ${hit.score.toFixed(3)}`)),
      el("pre", { class: "snippet" }, highlighted(hit.snippet, terms))));
  }
  $("more").hidden = result.next_offset === null || result.next_offset === undefined;
  searchState.offset = result.next_offset;
}

async function runSearch(params, append = false) {
  showError(null);
  if (!append) {
    $("results").replaceChildren();
    $("search-info").textContent = "Searching…";
  }
  try {
    const result = await api(`/v1/search?${query({ ...params, k: PAGE_SIZE, offset: append ? searchState.offset : 0 })}`);
    searchState.params = params;
    const degraded = result.degraded.length ? ` — not used: ${result.degraded.join(", ")}` : "";
    const count = $("results").children.length + result.hits.length;
    $("search-info").textContent = `${count} hits for “${result.query}” (${result.mode})${degraded}`;
    renderHits(result, queryTerms(params.q));
  } catch (error) {
    $("search-info").textContent = "";
    showError(error);
  }
}

function searchPage(params) {
  for (const key of ["q", "mode", "lang", "path", "kind"]) if (params.has(key)) $(key).value = params.get(key);
  loadRepoOptions(params.get("repo"));
  if (params.get("q")) runSearch(Object.fromEntries(params));
}

async function loadRepoOptions(selected) {
  try {
    const { repositories } = await api("/v1/repositories");
    const select = $("repo");
    select.replaceChildren(el("option", { value: "" }, "all"),
      ...repositories.map((r) => el("option", { value: r.repo }, r.repo)));
    select.value = selected || "";
  } catch (error) {
    showError(error);
  }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const params = query({ q: $("q").value.trim(), mode: $("mode").value, repo: $("repo").value,
                         lang: $("lang").value.trim(), path: $("path").value.trim(), kind: $("kind").value });
  const target = `#/search?${params}`;
  if (location.hash === target) route(); else location.hash = target;
});
$("more").addEventListener("click", () => runSearch(searchState.params, true));

// ---- symbol page and graph ------------------------------------------------------------------------------

let graph = null;  // the cytoscape instance (window.lodeGraph for tests and the console)

function hopItem(hop) {
  const link = hop.external ? el("span", { class: "name" }, hop.name_path)
                            : el("a", { class: "name", href: symbolHref(hop.name_path, hop.repo) }, hop.name_path);
  return el("li", {}, "  ".repeat(hop.depth - 1), link, " ", el("span", { class: "loc" }, cite(hop)),
            el("span", { class: "meta" }, ` ${hop.edge} ${hop.confidence.toFixed(2)} at ${hop.evidence}`));
}

function drawGraph(center, callers, callees) {
  const nodes = new Map();
  const edges = [];
  const addNode = (item, role) => {
    if (!nodes.has(item.name_path)) {
      const label = item.name_path.split(".").slice(-2).join(".");
      nodes.set(item.name_path, { data: { id: item.name_path, label, repo: item.repo, role: item.external ? "external" : role } });
    }
  };
  addNode(center, "center");
  for (const hop of callers.results) {
    addNode(hop, "caller");
    edges.push({ data: { id: `r:${hop.name_path}>${hop.via}`, source: hop.name_path, target: hop.via, kind: hop.edge } });
  }
  for (const hop of callees.results) {
    addNode(hop, "callee");
    edges.push({ data: { id: `e:${hop.via}>${hop.name_path}`, source: hop.via, target: hop.name_path, kind: hop.edge } });
  }
  if (graph) graph.destroy();
  graph = window.lodeGraph = cytoscape({
    container: $("graph"),
    elements: [...nodes.values(), ...edges.filter((e) => nodes.has(e.data.source) && nodes.has(e.data.target))],
    layout: { name: "breadthfirst", directed: true, padding: 20, spacingFactor: 1.1 },
    wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
                                   width: 18, height: 18, "background-color": "#5b8def", color: "#1d2433" } },
      { selector: "node[role = 'center']", style: { "background-color": "#e8590c", width: 26, height: 26, "font-weight": "bold" } },
      { selector: "node[role = 'caller']", style: { "background-color": "#2f9e44" } },
      { selector: "node[role = 'external']", style: { "background-color": "#adb5bd", shape: "round-rectangle" } },
      { selector: "edge", style: { width: 1.5, "curve-style": "bezier", "target-arrow-shape": "triangle",
                                   "line-color": "#98a2b3", "target-arrow-color": "#98a2b3" } },
    ],
  });
  graph.on("tap", "node", (event) => {
    const node = event.target;
    if (node.data("role") !== "external" && node.id() !== center.name_path) {
      location.hash = symbolHref(node.id(), node.data("repo"));
    }
  });
}

function symbolHeader(symbol) {
  return el("div", { class: "symbol-head" },
    el("h2", {}, symbol.name_path || symbol.name, " ", el("span", { class: "kind" }, symbol.kind)),
    el("p", { class: "loc" }, `${symbol.repo} · ${symbol.path}:${symbol.start_line}-${symbol.end_line} · ${symbol.language}`),
    symbol.signature ? el("pre", { class: "signature" }, symbol.signature) : null,
    symbol.docstring ? el("pre", { class: "docstring" }, symbol.docstring) : el("p", { class: "info" }, "No docstring."));
}

async function symbolPage(params) {
  showError(null);
  const name = params.get("name") || "";
  const repo = params.get("repo") || "";
  const head = $("symbol-head");
  head.replaceChildren(el("p", { class: "info" }, `Looking up ${name}…`));
  $("callers").replaceChildren();
  $("callees").replaceChildren();
  try {
    const found = await api(`/v1/symbols?${query({ name, repo, limit: 50 })}`);
    if (!found.symbols.length) {
      head.replaceChildren(el("p", { class: "info" }, `No symbol named ${name}.`),
        found.suggestions.length ? el("p", {}, "Did you mean: ",
          found.suggestions.map((s, i) => [i ? ", " : "", el("a", { href: symbolHref(s, repo) }, s)])) : null);
      return;
    }
    const exact = found.symbols.filter((s) => s.name_path === name);
    const chosen = exact.length ? exact : found.symbols;
    if (chosen.length > 1) {
      head.replaceChildren(el("h2", {}, `${chosen.length} definitions of ${name}`),
        el("ul", { class: "choices" }, chosen.map((s) => el("li", {},
          el("a", { href: symbolHref(s.name_path, s.repo) }, s.name_path), " ",
          el("span", { class: "loc" }, `${s.repo} · ${cite(s)}`)))));
      return;
    }
    const symbol = chosen[0];
    head.replaceChildren(symbolHeader(symbol));
    const depth = $("depth").value;
    const neighbours = (direction) =>
      api(`/v1/graph/${direction}?${query({ symbol: symbol.name_path, repo: symbol.repo, depth })}`);
    const [callers, callees] = await Promise.all([neighbours("callers"), neighbours("callees")]);
    const none = el("li", { class: "info" }, "none");
    $("callers").replaceChildren(...(callers.results.length ? callers.results.map(hopItem) : [none.cloneNode(true)]));
    $("callees").replaceChildren(...(callees.results.length ? callees.results.map(hopItem) : [none]));
    drawGraph({ ...callers.symbol, repo: symbol.repo }, callers, callees);
  } catch (error) {
    head.replaceChildren();
    showError(error);
  }
}

$("depth").addEventListener("change", () => route());

// ---- index status ---------------------------------------------------------------------------------------

let statusTimer = null;

function progressBar(done, total) {
  const percent = total ? Math.round((100 * done) / total) : 0;
  const bar = el("span", { class: "bar", title: `${percent}%` }, el("span", { class: "fill" }));
  bar.firstChild.style.width = `${percent}%`;
  return el("span", { class: "progress" }, bar, ` ${done}/${total || "?"}`);
}

function repoRow(r, d) {
  const emb = d.embeddings || { done: 0, pending: 0, failed: 0 };
  const stale = d.staleness;
  const freshness = !stale ? "" : stale.changed || stale.missing
    ? `stale: ${stale.changed} changed, ${stale.missing} missing` : "up to date";
  const lastRun = d.last_run ? `last run ${d.last_run.status}` : "";
  return el("tr", {},
    el("td", {}, el("a", { href: `#/search?${query({ repo: r.repo })}` }, r.repo)), el("td", { class: "loc" }, r.root),
    el("td", {}, d.files ?? ""), el("td", {}, r.chunks),
    el("td", {}, `${emb.done} done · ${emb.pending} pending · ${emb.failed} failed`),
    el("td", {}, new Date(r.updated_at).toLocaleString()), el("td", {}, [freshness, lastRun].filter(Boolean).join("; ")));
}

function jobRow(job) {
  return el("tr", { class: `job ${job.state}` },
    el("td", { class: "loc" }, String(job.id).slice(0, 8)), el("td", {}, job.repo || ""),
    el("td", {}, job.state, job.error ? el("div", { class: "error" }, job.error) : null),
    el("td", {}, progressBar(job.files_done, job.files_total)), el("td", {}, job.chunks),
    el("td", {}, job.embeddings ? `${job.embeddings.done} done · ${job.embeddings.pending} pending` : ""),
    el("td", {}, job.eta_seconds == null ? "" : `${Math.round(job.eta_seconds)}s`),
    el("td", {}, ["queued", "running"].includes(job.state)
      ? el("button", { type: "button", onclick: () => cancelJob(job.id) }, "Cancel") : null));
}

let jobStates = null;  // the repositories table (and its staleness checks) reloads only when a job changes state

async function refreshStatus() {
  try {
    const { jobs } = await api("/v1/index");
    $("jobs").replaceChildren(...jobs.map(jobRow));
    if (!jobs.length) $("jobs").append(el("tr", {}, el("td", { colspan: 8, class: "info" }, "No jobs.")));
    const states = jobs.map((job) => `${job.id}:${job.state}`).join(",");
    if (states !== jobStates) {
      const [{ repositories }, status] = await Promise.all([api("/v1/repositories"), api("/v1/status")]);
      const details = new Map((status.repos || []).map((r) => [r.repo, r]));
      $("repos").replaceChildren(...repositories.map((r) => repoRow(r, details.get(r.repo) || {})));
      if (!repositories.length) $("repos").append(el("tr", {}, el("td", { colspan: 7, class: "info" }, "Nothing indexed yet.")));
      jobStates = states;
    }
    showError(null);
  } catch (error) {
    showError(error);
  }
}

async function cancelJob(id) {
  try {
    await api(`/v1/index/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (error) {
    showError(error);
  }
  refreshStatus();
}

$("index-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("/v1/index", { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
                             body: JSON.stringify({ path: $("index-path").value.trim(), repo: $("index-repo").value.trim() || null }) });
    $("index-path").value = "";
    $("index-repo").value = "";
  } catch (error) {
    showError(error);
  }
  refreshStatus();
});

function statusPage() {
  jobStates = null;
  refreshStatus();
  statusTimer = setInterval(refreshStatus, STATUS_REFRESH_MS);
}

// ---- routing --------------------------------------------------------------------------------------------

const pages = { search: searchPage, symbol: symbolPage, status: statusPage };

function route() {
  clearInterval(statusTimer);
  const [, name = "search", rest = ""] = location.hash.match(/^#\/(\w+)\??(.*)$/) || [];
  const page = pages[name] ? name : "search";
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.page === page);
  pages[page](new URLSearchParams(rest));
}

window.addEventListener("hashchange", route);
route();
