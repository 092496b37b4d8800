// nerctl's page: renders `nerctl predict` records (the served page asks /v1/ner for them; a static page
// carries them in <script type="application/json"> blocks). Text only ever reaches the page through
// textContent, never as markup (the server's CSP also requires Trusted Types, so an HTML sink would throw).
// Offsets are code points, as Python counts them: text is sliced as Array.from(text), never by UTF-16 units.
"use strict";
(() => {
  const config = JSON.parse(document.getElementById("nerctl-config").textContent);
  const PAGE_SIZE = config.page_size || 50;
  const PALETTE_SIZE = config.palette_size || 16;
  const $ = (id) => document.getElementById(id);
  const types = [...(config.types || [])];
  const state = { records: null, chunks: [], cache: new Map(), page: 0, minScore: config.min_score || 0, key: "" };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function typeClass(type) {
    let i = types.indexOf(type);
    if (i < 0) { i = types.push(type) - 1; drawLegend(); }  // a type the model facts did not list
    return "t" + (i % PALETTE_SIZE);
  }

  function drawLegend() {
    const legend = $("legend");
    legend.replaceChildren(...types.map((type) => {
      const item = el("li");
      const mark = el("mark", "ent " + "t" + (types.indexOf(type) % PALETTE_SIZE), type);
      item.append(mark);
      return item;
    }));
  }

  // One highlighted span: its text exactly text[start:end], its type written beside it, its score on
  // hover, in the "scores" view and for screen readers.
  function mark(points, entity, flag) {
    const node = el("mark", "ent " + typeClass(entity.type) + (flag ? " " + flag.kind : ""));
    const scored = typeof entity.score === "number";
    const score = scored ? entity.score.toFixed(2) : "";
    node.title = entity.type + (scored ? ", score " + score : "") + (flag ? ", " + flag.label : "");
    node.dataset.start = entity.start;
    node.dataset.end = entity.end;
    node.dataset.type = entity.type;
    node.append(el("span", "ent-text", points.slice(entity.start, entity.end).join("")));
    const label = el("span", "ent-type", entity.type);
    label.setAttribute("aria-hidden", "true");
    node.append(label);
    if (scored) {
      const shown = el("span", "ent-score", score);
      shown.setAttribute("aria-hidden", "true");
      node.append(shown);
    }
    if (flag) {
      const note = el("span", "flag", flag.label);
      note.setAttribute("aria-hidden", "true");
      node.append(note);
    }
    node.append(el("span", "sr", " (" + node.title + ")"));
    return node;
  }

  // The text with its entities (those scored at least the slider's value) highlighted.
  function highlighted(text, entities, flagOf) {
    const points = Array.from(text);
    const out = el("p", "text");
    out.dir = "auto";
    let at = 0;
    const shown = entities.filter((e) => typeof e.score !== "number" || e.score >= state.minScore)
      .sort((a, b) => a.start - b.start);
    for (const entity of shown) {
      if (entity.start < at || entity.end > points.length) continue;  // overlapping or out of range: skip
      out.append(document.createTextNode(points.slice(at, entity.start).join("")));
      out.append(mark(points, entity, flagOf ? flagOf(entity) : null));
      at = entity.end;
    }
    out.append(document.createTextNode(points.slice(at).join("")));
    return { node: out, hidden: entities.length - shown.length };
  }

  const key = (e) => e.type + ":" + e.start + ":" + e.end;

  // An evaluation's sentence: gold spans (missed ones flagged) above predicted ones (wrong ones flagged).
  function sideBySide(record) {
    const gold = new Set(record.gold_entities.map(key));
    const pred = new Set(record.entities.map(key));
    const box = el("div", "side");
    const goldRow = highlighted(record.text, record.gold_entities,
      (e) => (pred.has(key(e)) ? null : { kind: "miss", label: "missed" }));
    const predRow = highlighted(record.text, record.entities,
      (e) => (gold.has(key(e)) ? null : { kind: "wrong", label: "wrong" }));
    box.append(el("span", "which", "gold"), goldRow.node, el("span", "which", "predicted"), predRow.node);
    return { node: box, hidden: predRow.hidden };
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = el("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    return Promise.resolve();
  }

  function jsonView(record, number) {
    const details = el("details");
    const summary = el("summary", null, "JSON record");
    const pre = el("pre");
    details.append(summary, pre);
    details.addEventListener("toggle", () => {
      if (details.open && !pre.textContent) pre.textContent = JSON.stringify(record, null, 2);
    });
    const copy = el("button", "quiet", "Copy JSON");
    copy.type = "button";
    copy.setAttribute("aria-label", "Copy the JSON record of text " + number);
    copy.addEventListener("click", () => copyText(JSON.stringify(record))
      .then(() => say("Copied the JSON record of text " + number + "."))
      .catch(() => say("Could not copy: select the JSON and copy it instead.")));
    return [details, copy];
  }

  function recordItem(record, index) {
    const item = el("li", "result");
    item.dataset.index = index;
    const head = el("div", "result-head");
    head.append(el("span", null, "#" + (index + 1)));
    if (record.source) head.append(el("span", null, record.source + (record.line ? ":" + record.line : "")));
    if (typeof record.errors === "number") head.append(el("span", null, record.errors + " span error(s)"));
    const body = record.gold_entities ? sideBySide(record) : highlighted(record.text, record.entities || []);
    const count = (record.entities || []).length - body.hidden;
    head.append(el("span", "count", count + " entit" + (count === 1 ? "y" : "ies") +
      (body.hidden ? ", " + body.hidden + " under the minimum score" : "")));
    const [details, copy] = jsonView(record, index + 1);
    head.append(copy);
    item.append(head, body.node, details);
    return item;
  }

  // Records: the live page's answer, or the static page's blocks, parsed a block at a time when shown.
  function total() {
    return state.records ? state.records.length : state.chunks.reduce((n, c) => n + c.count, 0);
  }

  function recordAt(i) {
    if (state.records) return state.records[i];
    let first = 0;
    for (const [c, chunk] of state.chunks.entries()) {
      if (i < first + chunk.count) {
        if (!state.cache.has(c)) {
          if (state.cache.size >= 2) state.cache.delete(state.cache.keys().next().value);
          state.cache.set(c, JSON.parse(chunk.node.textContent));
        }
        return state.cache.get(c)[i - first];
      }
      first += chunk.count;
    }
    return undefined;
  }

  function pages() { return Math.max(1, Math.ceil(total() / PAGE_SIZE)); }

  function draw() {
    const n = total();
    state.page = Math.min(Math.max(state.page, 0), pages() - 1);
    const from = state.page * PAGE_SIZE;
    const to = Math.min(from + PAGE_SIZE, n);
    const list = $("results");
    list.replaceChildren();
    for (let i = from; i < to; i++) list.append(recordItem(recordAt(i), i));
    $("pager").hidden = n <= PAGE_SIZE;
    $("page").value = state.page + 1;
    $("page").max = pages();
    $("pages").textContent = "of " + pages();
    for (const [id, off] of [["first", 0], ["prev", state.page - 1], ["next", state.page + 1], ["last", pages() - 1]]) {
      $(id).disabled = off < 0 || off >= pages() || off === state.page;
    }
    $("shown").textContent = n ? "Texts " + (from + 1).toLocaleString("en") + "\u2013" + to.toLocaleString("en") +
      " of " + n.toLocaleString("en") : "";
  }

  function say(message) { $("status").textContent = message; }
  function fail(message) { $("error").textContent = message; }

  function showFacts(facts) {
    const list = $("facts");
    const rows = [["model", facts.model], ["base model", facts.base_model],
      ["dev F1", facts.best_dev_f1], ["test F1", facts.test_f1],
      ["engine", facts.engine ? facts.engine.backend + " " + facts.engine.precision : null],
      ["temperature", facts.temperature], ["evaluated", facts.evaluation], ["texts", facts.texts]];
    list.replaceChildren(...rows.filter(([, v]) => v !== null && v !== undefined).map(([name, value]) => {
      const row = el("div");
      row.append(el("dt", null, name), el("dd", null, typeof value === "number" && !Number.isInteger(value)
        ? value.toFixed(4) : String(value)));
      return row;
    }));
    $("model-name").textContent = facts.model || "";
    for (const type of facts.types || []) if (!types.includes(type)) types.push(type);
    drawLegend();
  }

  // The served page: the API key lives only in this variable (never in storage, a cookie or the URL).
  function headers() {
    const out = { "Content-Type": "application/json" };
    if (state.key) out.Authorization = "Bearer " + state.key;
    return out;
  }

  async function ask(path, body) {
    const response = await fetch(path, body === undefined ? { headers: headers() }
      : { method: "POST", headers: headers(), body: JSON.stringify(body) });
    const answer = await response.json().catch(() => null);
    if (response.status === 401) {
      $("key-row").hidden = false;
      throw new Error("This server needs its API key: enter it in the API key field.");
    }
    if (!response.ok) throw new Error(answer && answer.error ? answer.error.message : "HTTP " + response.status);
    return answer;
  }

  async function loadFacts() {
    try {
      const facts = await ask("/v1/model");
      showFacts(facts);
      return true;
    } catch (err) {
      fail(err.message);
      return false;
    }
  }

  async function tag() {
    const texts = $("texts").value.split(/\r?\n/).filter((line) => line.trim());
    fail("");
    if (!texts.length) { fail("Type a text to tag (one per line)."); $("texts").focus(); return; }
    const button = $("tag");
    button.disabled = true;
    $("results").setAttribute("aria-busy", "true");
    say("Tagging " + texts.length + " text" + (texts.length === 1 ? "" : "s") + "\u2026");
    try {
      if (!$("facts").children.length) await loadFacts();
      const answer = await ask("/v1/ner", { texts });
      state.records = answer.results;
      state.page = 0;
      draw();
      say("Tagged " + texts.length + " text" + (texts.length === 1 ? "" : "s") + ".");
    } catch (err) {
      say("");
      fail(err.message);
    } finally {
      button.disabled = false;
      $("results").removeAttribute("aria-busy");
    }
  }

  function wirePager() {
    const go = (page) => { state.page = page; draw(); };
    $("first").addEventListener("click", () => go(0));
    $("prev").addEventListener("click", () => go(state.page - 1));
    $("next").addEventListener("click", () => go(state.page + 1));
    $("last").addEventListener("click", () => go(pages() - 1));
    $("page").addEventListener("change", () => go((parseInt($("page").value, 10) || 1) - 1));
  }

  function wireControls() {
    const slider = $("min-score");
    slider.value = state.minScore;
    const showScore = () => { $("min-score-value").textContent = Number(slider.value).toFixed(2); };
    showScore();
    slider.addEventListener("input", () => { state.minScore = Number(slider.value); showScore(); draw(); });
    $("show-scores").addEventListener("change", (e) => document.body.classList.toggle("scores", e.target.checked));
    wirePager();
  }

  function wireLive() {
    $("input").hidden = false;
    $("tag").addEventListener("click", tag);
    $("texts").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); tag(); }
    });
    $("api-key").addEventListener("change", (e) => { state.key = e.target.value; fail(""); loadFacts(); });
    if (config.auth) $("key-row").hidden = false;
    else loadFacts();
  }

  wireControls();
  if (config.mode === "live") {
    state.records = [];
    wireLive();
  } else {
    state.chunks = [...document.querySelectorAll("script.nerctl-records")]
      .map((node) => ({ node, count: Number(node.dataset.count) }));
    showFacts({ ...(config.facts || {}), texts: total() });
  }
  drawLegend();
  draw();
})();
