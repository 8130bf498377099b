// Lode web UI: search, symbol pages with a call graph, and index status. Talks to the REST API under /v1.
// Every value from the server is inserted as text (never as HTML). The URL (its hash) is the state of a page:
// forms are filled from it, so reload, back and forward show what the URL says.
"use strict";

const PAGE_SIZE = 20;
const STATUS_REFRESH_MS = 2000;
const SEARCH_FIELDS = { q: "", mode: "hybrid", repo: "", lang: "", path: "", kind: "" };  // and their defaults
const $ = (id) => document.getElementById(id);

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  return append(node, children);
}

// replaceChildren that skips absent children (replaceChildren(null) would print "null")
function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
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

// Errors by what raised them: each part of a page clears only its own (a refresh must not erase the error of
// an index request), and a new page clears them all.
const errors = new Map();

function setError(source, error) {
  if (error) errors.set(source, String(error.message || error));
  else errors.delete(source);
  const box = $("error");
  box.textContent = [...errors.values()].join("\n");
  box.hidden = !errors.size;
}

// Bumped on every navigation: an answer that arrives for an earlier page is dropped instead of drawn.
let navigation = 0;
const current = (ticket) => ticket === navigation;

const cite = (item) => (item.external ? "(external)" : `${item.path}:${item.start_line}-${item.end_line}`);
// depth 1 is the default and left out of the URL
const symbolHref = (name, repo, depth) => `#/symbol?${query({ name, repo, depth: depth === "1" ? null : depth })}`;
// links from a symbol page keep its depth
const symbolLink = (name, repo) => symbolHref(name, repo, $("depth").value);

// ---- source view ----------------------------------------------------------------------------------------

// The lines of a file as the index numbers them, and a link that opens the file there in an editor.
async function sourceView(item) {
  const view = await api(`/v1/repositories/${encodeURIComponent(item.repo)}/source?${query({
    path: item.path, start_line: item.start_line, end_line: item.end_line })}`);
  const numbered = view.origin === "file";
  const lines = view.lines.map((text, i) =>
    el("span", { class: "line", "data-n": numbered ? view.start_line + i : null }, text, "\n"));
  return el("div", { class: "source-view" },
    el("div", { class: "source-tools" },
      el("a", { class: "editor", href: view.editor_url, title: view.absolute_path }, "Open in editor"), " ",
      el("span", { class: "loc" }, `${view.path}:${view.start_line}-${view.end_line}`),
      numbered ? null : el("span", { class: "stale" }, ` ${view.stale}: the indexed text, not the file's lines`)),
    el("pre", { class: numbered ? "source numbered" : "source" }, lines));
}

async function toggleSource(button, item, container) {
  if (container.firstChild) {
    container.replaceChildren();
    button.textContent = "Source";
    return;
  }
  button.disabled = true;
  try {
    container.replaceChildren(await sourceView(item));
    button.textContent = "Hide source";
    setError("source", null);
  } catch (error) {
    setError("source", error);
  } finally {
    button.disabled = false;
  }
}

// ---- search ---------------------------------------------------------------------------------------------

// The snippet with the server's highlights ([line, start, end] in code points, as the tokenizer matched the
// query) drawn as <mark>s.
function highlighted(snippet, highlights) {
  const lines = snippet.split("\n").map((line) => Array.from(line));
  const marks = lines.map(() => []);
  for (const [line, start, end] of highlights || []) if (marks[line]) marks[line].push([start, end]);
  return lines.map((chars, number) => {
    const parts = [];
    let at = 0;
    for (const [start, end] of marks[number]) {
      parts.push(chars.slice(at, start).join(""), el("mark", {}, chars.slice(start, end).join("")));
      at = end;
    }
    parts.push(chars.slice(at).join(""), number < lines.length - 1 ? "\n" : "");
    return parts;
  });
}

const searchState = { params: null, offset: 0 };

function hitItem(hit) {
  const name = hit.name_path || hit.name || hit.kind;
  const title = hit.name_path
    ? el("a", { class: "name", href: symbolHref(hit.name_path, hit.repo) }, name)
    : el("span", { class: "name" }, name);
  const source = el("div", { class: "hit-source" });
  const button = el("button", { type: "button", class: "source-toggle" }, "Source");
  button.addEventListener("click", () => toggleSource(button, hit, source));
  return el("li", { class: "hit" },
    el("div", { class: "hit-head" },
      el("span", { class: "loc" }, cite(hit)), " ", el("span", { class: "kind" }, hit.kind), " ", title,
      el("span", { class: "meta" }, ` ${hit.repo} · ${hit.language} · ${hit.score.toFixed(3)}`), button),
    el("pre", { class: "snippet" }, highlighted(hit.snippet, hit.highlights)),
    source);
}

async function runSearch(params, append = false) {
  const ticket = navigation;
  setError("search", null);
  if (!append) {
    $("results").replaceChildren();
    $("more").hidden = true;
    $("search-info").textContent = "Searching…";
  }
  try {
    const result = await api(`/v1/search?${query({ ...params, k: PAGE_SIZE, offset: append ? searchState.offset : 0 })}`);
    if (!current(ticket)) return;
    searchState.params = params;
    const degraded = result.degraded.length ? ` — not used: ${result.degraded.join(", ")}` : "";
    const count = $("results").children.length + result.hits.length;
    $("search-info").textContent = `${count} hits for “${result.query}” (${result.mode})${degraded}`;
    $("results").append(...result.hits.map(hitItem));
    $("more").hidden = result.next_offset === null || result.next_offset === undefined;
    searchState.offset = result.next_offset;
  } catch (error) {
    if (!current(ticket)) return;
    $("search-info").textContent = "";
    setError("search", error);
  }
}

function searchPage(params) {
  // every field from the URL, defaults for those it leaves out: the form shows what the results are for
  const wanted = Object.fromEntries(Object.entries(SEARCH_FIELDS).map(([key, fallback]) =>
    [key, params.get(key) ?? fallback]));
  for (const key of Object.keys(SEARCH_FIELDS)) if (key !== "repo") $(key).value = wanted[key];
  loadRepoOptions(wanted.repo);
  if (wanted.q) {
    runSearch(Object.fromEntries(Object.entries(wanted).filter(([, value]) => value !== "")));
  } else {
    $("results").replaceChildren();
    $("more").hidden = true;
    $("search-info").textContent = "";
  }
}

async function loadRepoOptions(selected) {
  const select = $("repo");
  const ticket = navigation;
  if (![...select.options].some((option) => option.value === selected)) select.append(el("option", { value: selected }, selected));
  select.value = selected;
  try {
    const { repositories } = await api("/v1/repositories");
    if (!current(ticket)) return;
    const names = repositories.map((r) => r.repo);
    if (selected && !names.includes(selected)) names.push(selected);  // the URL's, even if unknown here
    fill(select, el("option", { value: "" }, "all"), names.map((name) => el("option", { value: name }, name)));
    select.value = selected;
  } catch (error) {
    setError("repositories", error);
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

// ---- symbol page ----------------------------------------------------------------------------------------

function hopItem(hop) {
  const link = hop.external ? el("span", { class: "name" }, hop.name_path)
                            : el("a", { class: "name", href: symbolLink(hop.name_path, hop.repo) }, hop.name_path);
  return el("li", {}, "  ".repeat(hop.depth - 1), link, " ", el("span", { class: "loc" }, cite(hop)),
            el("span", { class: "meta" }, ` ${hop.edge} ${hop.confidence.toFixed(2)} at ${hop.evidence}`));
}

function symbolHeader(symbol) {
  return el("div", { class: "symbol-head" },
    el("h2", {}, symbol.name_path || symbol.name, " ", el("span", { class: "kind" }, symbol.kind)),
    el("p", { class: "loc" }, `${symbol.repo} · ${symbol.path}:${symbol.start_line}-${symbol.end_line} · ${symbol.language}`),
    symbol.signature ? el("pre", { class: "signature" }, symbol.signature) : null,
    symbol.docstring ? el("pre", { class: "docstring" }, symbol.docstring) : el("p", { class: "info" }, "No docstring."));
}

function clearSymbol(message) {
  clearGraph();
  $("callers").replaceChildren();
  $("callees").replaceChildren();
  $("symbol-source").replaceChildren();
  $("symbol-body").hidden = true;
  fill($("symbol-head"), message);
}

async function symbolPage(params) {
  const ticket = navigation;
  const name = params.get("name") || "";
  const repo = params.get("repo") || "";
  // the depth of the callers and callees comes from the URL (a value the select does not offer is the default)
  const depths = [...$("depth").options].map((option) => option.value);
  $("depth").value = depths.includes(params.get("depth")) ? params.get("depth") : depths[0];
  clearSymbol(el("p", { class: "info" }, `Looking up ${name}…`));
  try {
    const found = await api(`/v1/symbols?${query({ name, repo, limit: 50 })}`);
    if (!current(ticket)) return;
    if (!found.symbols.length) {
      fill($("symbol-head"), el("p", { class: "info" }, `No symbol named ${name}.`),
        found.suggestions.length ? el("p", {}, "Did you mean: ",
          found.suggestions.map((s, i) => [i ? ", " : "", el("a", { href: symbolLink(s, repo) }, s)])) : null);
      return;
    }
    const exact = found.symbols.filter((s) => s.name_path === name);
    const chosen = exact.length ? exact : found.symbols;
    if (chosen.length > 1) {
      fill($("symbol-head"), el("h2", {}, `${chosen.length} definitions of ${name}`),
        el("ul", { class: "choices" }, chosen.map((s) => el("li", {},
          el("a", { href: symbolLink(s.name_path, s.repo) }, s.name_path), " ",
          el("span", { class: "loc" }, `${s.repo} · ${cite(s)}`)))));
      return;
    }
    const symbol = chosen[0];
    fill($("symbol-head"), symbolHeader(symbol));
    const depth = $("depth").value;
    const neighbours = (direction) =>
      api(`/v1/graph/${direction}?${query({ symbol: symbol.name_path, repo: symbol.repo, depth })}`);
    const source = sourceView(symbol).catch((error) => el("p", { class: "error" }, `Source: ${error.message}`));
    const [callers, callees, view] = await Promise.all([neighbours("callers"), neighbours("callees"), source]);
    if (!current(ticket)) return;
    const none = () => el("li", { class: "info" }, "none");
    fill($("callers"), callers.results.length ? callers.results.map(hopItem) : none());
    fill($("callees"), callees.results.length ? callees.results.map(hopItem) : none());
    fill($("symbol-source"), view);
    $("symbol-body").hidden = false;
    drawGraph({ ...callers.symbol, repo: symbol.repo }, callers.results, callees.results);
  } catch (error) {
    if (!current(ticket)) return;
    clearSymbol(null);
    setError("symbol", error);
  }
}

$("depth").addEventListener("change", () => {  // the URL holds the depth, so reload and back agree with the lists
  const params = new URLSearchParams(location.hash.replace(/^#\/symbol\??/, ""));
  location.hash = symbolHref(params.get("name") || "", params.get("repo") || "", $("depth").value);
});

// ---- call graph -----------------------------------------------------------------------------------------
// Layered left to right (dagre): callers, the symbol, callees. Each side's nodes are grouped by file (compound
// nodes), so a file's box stays on one side. Beyond GROUP_SHOWN nodes of a box, or SIDE_SHOWN nodes on a
// side, the rest collapse into "+N more" nodes; a tap on one shows what it holds.

const GROUP_SHOWN = 4;
const SIDE_SHOWN = 10;
const LABEL_FONT = "11px system-ui, sans-serif";
let graph = null;  // the cytoscape instance (window.lodeGraph for tests and the console)

function clearGraph() {
  if (graph) graph.destroy();
  graph = window.lodeGraph = null;
}

const textWidth = (() => {
  const context = document.createElement("canvas").getContext("2d");
  return (text) => {
    context.font = LABEL_FONT;
    return Math.ceil(context.measureText(text).width);
  };
})();

// The graph's elements. `hops` is [["caller", callers], ["callee", callees]]; `expanded` holds the keys of
// what taps on "+N more" opened: a box's key, or "fold:<direction>".
function graphElements(center, hops, expanded) {
  const fileOf = (item) => (item.external ? "external" : `${item.repo}:${item.path}`);
  const centerGroup = `center|${fileOf(center)}`;
  const groups = new Map([[centerGroup, { key: centerGroup, label: center.path, members: [] }]]);
  const members = new Map();  // name path -> { id, hop, direction, group }
  for (const [direction, list] of hops) {
    for (const hop of list) {
      if (members.has(hop.name_path) || hop.name_path === center.name_path) continue;  // drawn once
      const key = `${direction}|${fileOf(hop)}`;
      if (!groups.has(key)) groups.set(key, { key, label: hop.external ? "external" : hop.path, members: [] });
      const item = { id: hop.name_path, hop, direction, group: key };
      members.set(item.id, item);
      groups.get(key).members.push(item);
    }
  }
  const depthOf = (group) => Math.min(...group.members.map((m) => m.hop.depth));
  const ordered = [...groups.values()].sort((a, b) => depthOf(a) - depthOf(b)
    || b.members.length - a.members.length || a.label.localeCompare(b.label));

  // which nodes show, and where each hidden one is drawn: its box's "+N more", or, once SIDE_SHOWN nodes of
  // its side are drawn, the side's "+N more in M files" (the fold)
  const drawnAs = new Map([[center.name_path, center.name_path]]);  // name path -> id of the node drawn for it
  const more = new Map();  // "+N more" node id -> { id, parent, key (what a tap opens), count, files }
  const hide = (item, id, parent) => {
    const entry = more.get(id) || { id, parent, count: 0, files: new Set() };
    entry.count += 1;
    entry.files.add(item.group);
    more.set(id, entry);
    drawnAs.set(item.id, id);
  };
  const budget = { caller: SIDE_SHOWN, callee: SIDE_SHOWN };
  for (const group of ordered) {
    group.members.sort((a, b) => a.hop.depth - b.hop.depth || a.id.localeCompare(b.id));
    const side = group.key.split("|")[0];
    const open = expanded.has(group.key);
    const fold = `fold:${side}`;
    const overBudget = budget[side] <= 0;
    const limit = open ? Infinity : Math.min(GROUP_SHOWN, overBudget ? GROUP_SHOWN : budget[side]);
    let drawn = 0;
    for (const item of group.members) {
      if (overBudget && !open && !expanded.has(fold)) {
        hide(item, fold, null);
      } else if (drawn < limit) {
        drawnAs.set(item.id, item.id);
        drawn += 1;
      } else {
        hide(item, `more:${group.key}`, group.key);
      }
    }
    if (!open && !overBudget) budget[side] -= drawn;
  }

  const nodes = [];
  const node = ({ parent, ...data }) =>  // a top-level node has no parent key at all
    nodes.push({ data: { ...data, ...(parent ? { parent } : {}), width: textWidth(data.label) + 14 } });
  const boxes = new Set([centerGroup]);
  for (const item of members.values()) if (drawnAs.get(item.id) === item.id) boxes.add(item.group);
  for (const entry of more.values()) if (entry.parent) boxes.add(entry.parent);
  for (const group of ordered) {
    if (boxes.has(group.key)) nodes.push({ data: { id: group.key, label: group.label, role: "file" } });
  }
  node({ id: center.name_path, label: shortName(center.name_path), repo: center.repo, role: "center",
         parent: centerGroup });
  for (const item of members.values()) {
    if (drawnAs.get(item.id) !== item.id) continue;
    node({ id: item.id, label: shortName(item.id), repo: item.hop.repo, parent: item.group,
           role: item.hop.external ? "external" : item.direction });
  }
  for (const entry of more.values()) {
    const files = entry.files.size === 1 ? "1 file" : `${entry.files.size} files`;
    const label = entry.parent ? `+${entry.count} more` : `+${entry.count} more in ${files}`;
    node({ id: entry.id, label, role: "more", expands: entry.parent || entry.id, parent: entry.parent });
  }

  const edges = new Map();
  for (const [direction, list] of hops) {
    for (const hop of list) {
      const [from, to] = direction === "caller" ? [hop.name_path, hop.via] : [hop.via, hop.name_path];
      const source = drawnAs.get(from);
      const target = drawnAs.get(to);
      const id = `${source}>${target}`;
      if (source && target && source !== target && !edges.has(id)) {
        edges.set(id, { data: { id, source, target, kind: hop.edge } });
      }
    }
  }
  return [...nodes, ...edges.values()];
}

const shortName = (namePath) => namePath.split(".").slice(-2).join(".");

function drawGraph(center, callers, callees) {
  const hops = [["caller", callers], ["callee", callees]];
  const expanded = new Set();
  clearGraph();
  graph = window.lodeGraph = cytoscape({
    container: $("graph"),
    elements: graphElements(center, hops, expanded),
    maxZoom: 1.6,
    style: [
      { selector: "node", style: {
        label: "data(label)", "font-size": 11, "font-family": "system-ui, sans-serif", "text-valign": "center",
        "text-halign": "center", shape: "round-rectangle", height: 22,
        "background-color": "#dbe4ff", "border-width": 1, "border-color": "#5b8def", color: "#1d2433" } },
      { selector: "node[width]", style: { width: "data(width)" } },  // compound nodes take their children's size
      { selector: "node[role = 'center']", style: { "background-color": "#ffe8cc", "border-color": "#e8590c",
                                                   "border-width": 2, "font-weight": "bold" } },
      { selector: "node[role = 'caller']", style: { "background-color": "#d3f9d8", "border-color": "#2f9e44" } },
      { selector: "node[role = 'external']", style: { "background-color": "#f1f3f5", "border-color": "#adb5bd" } },
      { selector: "node[role = 'more']", style: { "background-color": "#fff", "border-style": "dashed",
                                                 "border-color": "#868e96", color: "#495057" } },
      { selector: ":parent", style: {
        shape: "round-rectangle", "background-color": "#f8f9fa", "background-opacity": 1, "border-width": 1,
        "border-color": "#ced4da", "text-valign": "top", "text-halign": "center", "font-size": 10,
        color: "#667085", padding: 8 } },
      { selector: "edge", style: { width: 1.2, "curve-style": "bezier", "target-arrow-shape": "triangle",
                                   "line-color": "#98a2b3", "target-arrow-color": "#98a2b3", "arrow-scale": 0.8 } },
    ],
  });
  const layout = () => graph.layout({ name: "dagre", rankDir: "LR", nodeSep: 10, rankSep: 70, padding: 16 }).run();
  layout();
  graph.on("tap", "node", (event) => {
    const node = event.target;
    const role = node.data("role");
    if (role === "more") {
      expanded.add(node.data("expands"));
      graph.elements().remove();
      graph.add(graphElements(center, hops, expanded));
      layout();
    } else if (!["external", "file"].includes(role) && node.id() !== center.name_path) {
      location.hash = symbolLink(node.id(), node.data("repo"));
    }
  });
}

// ---- index status ---------------------------------------------------------------------------------------

let statusTimer = null;

function progress(job) {
  const { files_done: done, files_total: total, state } = job;
  const finishedEmpty = !total && state === "succeeded";  // nothing had changed: a run with no file to read
  const percent = total ? Math.round((100 * done) / total) : finishedEmpty ? 100 : 0;
  const bar = el("span", { class: "bar", title: `${percent}%` }, el("span", { class: "fill" }));
  bar.firstChild.style.width = `${percent}%`;
  const text = total ? `${done}/${total}` : finishedEmpty ? "done: nothing changed"
    : ["queued", "running"].includes(state) ? "listing files…" : "none";
  return el("span", { class: "progress" }, bar, ` ${text}`);
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
    el("td", {}, progress(job)), el("td", {}, job.chunks),
    el("td", {}, job.embeddings ? `${job.embeddings.done} done · ${job.embeddings.pending} pending` : ""),
    el("td", {}, job.eta_seconds == null ? "" : `${Math.round(job.eta_seconds)}s`),
    el("td", {}, ["queued", "running"].includes(job.state)
      ? el("button", { type: "button", onclick: () => cancelJob(job.id) }, "Cancel") : null));
}

let jobStates = null;  // the repositories table (and its staleness checks) reloads only when a job changes state

async function refreshStatus() {
  const ticket = navigation;
  try {
    const { jobs } = await api("/v1/index");
    if (!current(ticket)) return;
    fill($("jobs"), jobs.length ? jobs.map(jobRow) : el("tr", {}, el("td", { colspan: 8, class: "info" }, "No jobs.")));
    const states = jobs.map((job) => `${job.id}:${job.state}`).join(",");
    if (states !== jobStates) {
      const [{ repositories }, status] = await Promise.all([api("/v1/repositories"), api("/v1/status")]);
      if (!current(ticket)) return;
      const details = new Map((status.repos || []).map((r) => [r.repo, r]));
      fill($("repos"), repositories.length ? repositories.map((r) => repoRow(r, details.get(r.repo) || {}))
        : el("tr", {}, el("td", { colspan: 7, class: "info" }, "Nothing indexed yet.")));
      jobStates = states;
    }
    setError("status", null);
  } catch (error) {
    if (current(ticket)) setError("status", error);
  }
}

async function cancelJob(id) {
  try {
    await api(`/v1/index/${encodeURIComponent(id)}`, { method: "DELETE" });
    setError("cancel", null);
  } catch (error) {
    setError("cancel", error);
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
    setError("index", null);
  } catch (error) {
    setError("index", error);  // stays until the next index request or another page
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
  navigation += 1;
  clearInterval(statusTimer);
  for (const source of [...errors.keys()]) setError(source, null);
  const [, name = "search", rest = ""] = location.hash.match(/^#\/(\w+)\??(.*)$/) || [];
  const page = pages[name] ? name : "search";
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.page === page);
  if (page !== "symbol") clearGraph();
  pages[page](new URLSearchParams(rest));
}

window.addEventListener("hashchange", route);
route();
