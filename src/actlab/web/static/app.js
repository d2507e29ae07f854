// actlab explorer: three views over the server's API. The state of a view lives in the URL's hash
// (#view?key=value&...), so a view can be shared. Plots use uPlot, shipped in /static/vendor.
// window.actlab exposes what the page shows (curves, live losses), for tests and for the curious.
"use strict";

const BLUE = "#1f77b4", RED = "#d62728";
const SEED_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                     "#9c755f", "#bab0ac", "#17becf", "#bcbd22", "#7f7f7f", "#8c564b", "#e377c2", "#aec7e8"];
const $ = (sel, el = document) => el.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};
const actlab = window.actlab = { catalog: [], curves: null, live: null, run: null };

// A table: a header row and body rows; a cell is text, or a DOM node put in as it is
function dataTable(header, rows, attrs = {}) {
  const cell = v => v instanceof Node ? el("td", {}, v) : el("td", { text: v });
  return el("table", attrs, el("thead", {}, el("tr", {}, ...header.map(h => el("th", { text: h })))),
    el("tbody", {}, ...rows.map(r => el("tr", {}, ...r.map(cell)))));
}

// ------------------------------------------------------------------------------------- plumbing

// Every request carries X-Actlab (the server refuses writes without it: other sites cannot send it) and,
// for a live training, its secret token (only the page that created a training can see or control it).
function headers(token) {
  const h = { "Content-Type": "application/json", "X-Actlab": "1" };
  if (token) h["X-Live-Token"] = token;
  return h;
}

async function api(path, opts = {}, token = null) {
  const r = await fetch(path, { headers: headers(token), ...opts });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || `${r.status} ${r.statusText}`);
  return body;
}

function showError(err) {
  const p = $("#error");
  p.textContent = err ? String(err.message || err) : "";
  p.hidden = !err;
}

function readHash() {
  const [view, query] = location.hash.replace(/^#/, "").split("?");
  return { view: view || "activations", params: new URLSearchParams(query || "") };
}

function writeHash(view, params) {
  const q = params.toString();
  history.replaceState(null, "", `#${view}${q ? "?" + q : ""}`);
}

function plot(container, series, data, { logY = false, xLabel = "", yLabel = "", height = 300, yRange = null } = {}) {
  container.innerHTML = "";
  const width = Math.max(300, container.clientWidth || 600);
  return new uPlot({
    width, height, series: [{ label: xLabel }, ...series],
    scales: { x: { time: false }, y: logY ? { distr: 3 } : yRange ? { range: yRange } : {} },
    axes: [{ label: xLabel }, { label: yLabel, size: 60, values: logY ? logTicks : undefined }],
    legend: { live: false },
  }, data, container);
}

function fmt(v, digits = 4) { return v == null ? "—" : Number(v).toPrecision(digits); }

// ---------------------------------------------------------------------------------- activations

const MAX_CURVES = 6;  // the curves API's limit (one readable plot); the list says so when it is reached
function selectedActs(params) { return (params.get("acts") || "relu,gelu").split(",").filter(Boolean); }

function renderActivations() {
  const { params } = readHash();
  const chosen = selectedActs(params);
  $("#act-lo").value = params.get("lo") || "-5";
  $("#act-hi").value = params.get("hi") || "5";
  const list = $("#act-list");
  list.innerHTML = "";
  const full = chosen.length >= MAX_CURVES;
  const kinds = [["element-wise", null], ["gated", "gated (transformer FFN, φ(a)·b):"]];
  for (const [kind, heading] of kinds) {
    if (heading) list.append(el("div", { class: "dim kind", text: heading }));
    for (const a of actlab.catalog.filter(a => (a.kind || (a.vector ? "vector" : "element-wise")) === kind)) {
      const box = el("input", { type: "checkbox", value: a.name, onchange: onActChange });
      box.checked = chosen.includes(a.name);
      box.disabled = full && !box.checked;
      list.append(el("label", { title: a.description }, box, " " + a.name));
    }
  }
  if (full) list.prepend(el("p", { class: "dim kind", text: `At most ${MAX_CURVES} at once: uncheck one to draw another.` }));
  const holder = $("#act-params");
  holder.innerHTML = "";
  for (const name of chosen) {
    const a = actlab.catalog.find(c => c.name === name);
    if (!a) continue;
    for (const p of a.params) {
      // a slider over the parameter's allowed range (open ends get a finite span around the default), with
      // a number box beside it for exact values; both write the same URL parameter
      const key = `${name}.${p.name}`;
      let hi = p.high ?? Math.max(5, 5 * Math.abs(p.default) || 5), lo = p.low ?? -hi;
      const span = hi - lo;  // an open end is not allowed itself: the slider stops just inside it
      if (p.high != null && p.high_open) hi -= span / 1000;
      if (p.low != null && p.low_open) lo += span / 1000;
      const value = params.get(key) ?? p.default;
      // step "any": the thumb rests exactly on the default (a rounded step snapped 1 to 0.99)
      const input = el("input", { type: "number", step: "any", min: lo, max: hi, name: key, value,
                                  "aria-label": `${name} ${p.name}`, onchange: onActChange });
      const slider = el("input", { type: "range", min: lo, max: hi, step: "any", value, "aria-label": `${name} ${p.name} slider`,
                                   oninput: e => { input.value = e.target.value; },
                                   onchange: e => { input.value = e.target.value; onActChange(); } });
      holder.append(el("div", { class: "param" },
        el("label", { text: `${name}: ${p.name} (${p.doc}), from ${fmt(lo, 3)} to ${fmt(hi, 3)}` }), slider, input));
    }
  }
  drawCurves();
  drawSoftmax();
  drawGuide();
}

function onActChange() {
  const params = new URLSearchParams();
  const acts = [...document.querySelectorAll("#act-list input:checked")].map(b => b.value);
  params.set("acts", acts.join(","));
  for (const input of document.querySelectorAll("#act-params input")) {
    if (acts.includes(input.name.split(".")[0])) params.set(input.name, input.value);
  }
  params.set("lo", $("#act-lo").value);
  params.set("hi", $("#act-hi").value);
  writeHash("activations", params);
  renderActivations();
}

async function drawCurves() {
  const { params } = readHash();
  const acts = selectedActs(params).slice(0, MAX_CURVES);
  if (!acts.length) { $("#act-plot").innerHTML = "<p class='dim'>Choose an activation.</p>"; return; }
  const items = acts.map(name => {
    const a = actlab.catalog.find(c => c.name === name);
    const p = {};
    for (const prm of (a ? a.params : [])) if (params.has(`${name}.${prm.name}`)) p[prm.name] = Number(params.get(`${name}.${prm.name}`));
    return { name, params: p };
  });
  try {
    const res = await api("/api/activations/curves", { method: "POST", body: JSON.stringify(
      { items, lo: Number(params.get("lo") || -5), hi: Number(params.get("hi") || 5), points: 401 }) });
    showError(null);
    actlab.curves = res;
    const series = [];
    res.curves.forEach((c) => {  // each activation in its palette colour (as in the reports): φ solid, φ′ dashed
      series.push({ label: c.label, color: c.color || BLUE, values: c.y });
      series.push({ label: c.label + "′", color: c.color || RED, width: 1.5, dash: [6, 4], values: c.dy });
    });
    // a legend with names and line styles, and a read-out of every curve at the cursor
    actlab.plots = { ...(actlab.plots || {}), act: linePlot($("#act-plot"), res.x, series, { xLabel: "x", yLabel: "φ (solid), φ′ (dashed)", height: 340 }) };
    renderProps(res.curves);
    const first = items.find(it => ((actlab.catalog.find(c => c.name === it.name) || {}).kind || "element-wise") === "element-wise");
    if (first) drawTheory(first);
  } catch (e) { showError(e); }
}

// Mean-field theory of the first chosen activation: the prediction at (σ_w², σ_b²), χ₁ against σ_w² with the
// edge of chaos, and the variance and correlation maps (POST /api/activations/theory).
async function drawTheory(item) {
  const box = $("#act-theory");
  const { params } = readHash();
  const body = { name: item.name, params: item.params, sb2: Number(params.get("sb2") || 0) };
  if (params.has("sw2")) body.sw2 = Number(params.get("sw2"));
  box.innerHTML = "";
  box.append(el("p", { class: "dim", text: "Computing mean-field theory…" }));
  let t;
  try { t = actlab.theory = await api("/api/activations/theory", { method: "POST", body: JSON.stringify(body) }); }
  catch (e) { box.innerHTML = ""; box.append(el("p", { class: "dim", text: `Theory: ${e.message}` })); return; }
  const r = t.prediction;
  const setParam = (key, value) => { const p = readHash().params; p.set(key, value); writeHash("activations", p); drawTheory(item); };
  const sw2 = el("input", { type: "number", step: "0.05", min: "0.05", max: "100", id: "theory-sw2", value: fmt(t.sw2, 4),
                            onchange: e => setParam("sw2", e.target.value) });
  const sb2 = el("input", { type: "number", step: "0.01", min: "0", max: "10", id: "theory-sb2", value: t.sb2,
                            onchange: e => setParam("sb2", e.target.value) });
  const inf = v => v === "Infinity" || v === Infinity ? "∞" : fmt(v);
  const rows = [["q* (variance the layers approach)", r.q_star == null ? "none: q grows without bound" : fmt(r.q_star)],
                ["χ₁ (slope of the correlation map at 1)", fmt(r.chi1)], ["phase", r.phase || "—"],
                ["c* (correlation the layers approach)", r.c_star == null ? "—" : fmt(Math.abs(r.c_star) < 1e-12 ? 0 : r.c_star)], ["ξ_c (layers)", inf(r.xi_c)],
                ["trainable depth ≈ 6 ξ_c", inf(r.trainable_depth)],
                [`edge of chaos at σ_b² = ${t.sb2}`, t.critical_sw2 == null ? "none" : `σ_w² = ${fmt(t.critical_sw2)}`]];
  box.innerHTML = "";
  box.append(el("h3", { text: `Mean-field theory: ${t.label}` }),
    el("p", { class: "dim", text: "A wide random network, weights N(0, σ_w²/fan_in), biases N(0, σ_b²) (actlab theory). " +
                                  "σ_w² starts at the activation's paired init (gain²)." }),
    el("div", { class: "row" }, el("label", {}, "σ_w² ", sw2), el("label", {}, "σ_b² ", sb2)),
    el("table", { id: "theory-table" }, el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v }))))));
  if (r.note) box.append(el("p", { class: "dim", text: r.note }));
  const grid = el("div", { class: "theory-plots" });
  const chi = el("div", { id: "theory-chi" }), qm = el("div", { id: "theory-q" }), cm = el("div", { id: "theory-c" });
  grid.append(chi, qm, cm);
  box.append(grid);
  const ones = t.chi.sw2.map(() => 1);
  const mine = actlab.theoryColor = (actlab.catalog.find(a => a.name === t.name) || {}).color || BLUE;  // its own
  plot(chi, [{ label: "χ₁", stroke: mine, width: 2 }, { label: "χ₁ = 1 (edge of chaos)", stroke: "#888", dash: [4, 4] }],
       [t.chi.sw2, t.chi.chi1, ones], { xLabel: "σ_w²", yLabel: "χ₁", height: 240 });
  plot(qm, [{ label: "V(q)", stroke: mine, width: 2 }, { label: "q", stroke: "#888", dash: [4, 4] }],
       [t.q_map.q, t.q_map.v, t.q_map.q], { xLabel: "q (layer l)", yLabel: "q (layer l + 1)", height: 240 });
  if (t.c_map) plot(cm, [{ label: "C(c)", stroke: mine, width: 2 }, { label: "c", stroke: "#888", dash: [4, 4] }],
                    [t.c_map.c, t.c_map.C, t.c_map.c], { xLabel: "c (layer l)", yLabel: "c (layer l + 1)", height: 240 });
  else cm.append(el("p", { class: "dim", text: "No correlation map: q* is 0 or does not exist." }));
}

const SOFTMAX_DEFAULT = [2, 1, 0.5, -1];

async function drawSoftmax() {
  // softmax is vector-valued: sliders set the logits z and the temperature T; the bars are p = softmax(z / T)
  // and the table its Jacobian ∂p_i/∂z_j = (p_i δ_ij − p_i p_j) / T, both computed by the server's catalog
  const box = $("#act-softmax");
  const { params } = readHash();
  let logits = (params.get("sm") || SOFTMAX_DEFAULT.join(",")).split(",").map(Number).filter(Number.isFinite);
  if (logits.length < 2 || logits.length > 10) logits = SOFTMAX_DEFAULT.slice();
  const T = Number(params.get("T") || 1);
  const save = (z, t) => { const p = readHash().params; p.set("sm", z.join(",")); p.set("T", t); writeHash("activations", p); drawSoftmax(); };
  let res;
  try {
    res = await api("/api/activations/softmax", { method: "POST", body: JSON.stringify({ logits, temperature: T }) });
  } catch (err) { showError(err); return; }
  actlab.softmax = res;
  const color = (actlab.catalog.find(a => a.name === "softmax") || {}).color || BLUE;
  const sliders = logits.map((z, i) => el("label", { class: "sm-logit" }, `z${i + 1} `,
    el("input", { type: "range", min: -6, max: 6, step: 0.1, value: z, "aria-label": `logit ${i + 1}`,
                  onchange: e => { const v = logits.slice(); v[i] = Number(e.target.value); save(v, T); } }),
    ` ${z.toFixed(1)}`));
  const temp = el("label", {}, "temperature T ",
    el("input", { type: "range", min: -3, max: 3, step: 0.1, value: Math.log(T), "aria-label": "temperature (log scale)",
                  onchange: e => save(logits, Number(Math.exp(Number(e.target.value)).toPrecision(3))) }),
    ` ${T}`);
  const more = el("button", { type: "button", text: "+ logit", onclick: () => logits.length < 10 && save([...logits, 0], T) });
  const fewer = el("button", { type: "button", text: "− logit", onclick: () => logits.length > 2 && save(logits.slice(0, -1), T) });
  const bars = el("div", { class: "sm-bars" }, ...res.p.map((p, i) => el("div", { class: "sm-bar" },
    el("span", { text: `p${i + 1}` }),
    el("div", { class: "sm-track" }, el("div", { class: "sm-fill", style: `width:${(100 * p).toFixed(2)}%;background:${color}` })),
    el("span", { text: p.toFixed(4) }))));
  const jmax = Math.max(...res.jacobian.flat().map(Math.abs), 1e-12);
  const jrows = res.jacobian.map((row, i) => el("tr", {}, el("th", { text: `p${i + 1}` }), ...row.map(v => el("td", {
    text: v.toFixed(4), style: `background:${v >= 0 ? "rgba(0,114,178," : "rgba(213,94,0,"}${(0.6 * Math.abs(v) / jmax).toFixed(3)})` }))));
  box.innerHTML = "";
  box.append(el("div", { class: "card softmax" },
    el("h3", { text: "softmax: a vector in, probabilities out" }),
    el("p", { class: "dim", text: "softmax(z)_i = exp(z_i / T) / Σ_j exp(z_j / T). It is not element-wise: each output " +
      "depends on every logit, so its derivative is a matrix, J = (diag(p) − p pᵀ) / T. Rows sum to 0 (probabilities " +
      "stay normalised); a low T sharpens towards the arg max, a high T flattens towards uniform. Use it on the output " +
      "layer of a multi-class classifier (with cross-entropy), never as a hidden activation." }),
    el("div", { class: "sm-controls" }, ...sliders, temp, el("span", {}, fewer, " ", more)),
    el("p", { text: `arg max: z${res.argmax + 1}; entropy ${res.entropy.toFixed(3)} of at most ln ${logits.length} = ` +
      `${res.max_entropy.toFixed(3)} nats` }),
    bars,
    el("strong", { text: "Jacobian ∂p_i / ∂z_j (blue: positive, vermilion: negative)" }),
    el("table", { class: "sm-jac" }, el("thead", {}, el("tr", {}, el("th", {}), ...logits.map((_, j) => el("th", { text: `z${j + 1}` })))),
       el("tbody", {}, ...jrows))));
}

// The guide with the verdicts of the stored runs under the explorer's runs folder: fetched once, shared by the
// guide's panel and the activation cards.
let guidePromise = null;
function guideData() {
  guidePromise ??= api("/api/activations/guide").then(g => (actlab.guide = g));
  return guidePromise;
}

const verdictBadge = v => el("span", { class: `verdict ${v.replaceAll(" ", "-")}`, text: v });
const testedBy = by => !by ? "no study yet" : by.startsWith("a convention") || by.startsWith("convention") ? by :
  by.split(",")[0].trim().includes(" ") ? `tested across ${by}` : `tested by actlab run ${by.split(",").map(s => s.trim()).join(", ")}`;

async function drawGuide() {
  const body = $("#act-guide-body");
  if (body.dataset.drawing) return;  // drawn once: marked before the fetch, so two quick toggles draw it once
  body.dataset.drawing = "1";
  let g;
  try { g = await guideData(); } catch (err) { delete body.dataset.drawing; showError(err); return; }
  const verdicts = g.verdicts || {};
  const arch = el("table", {}, el("thead", {}, el("tr", {}, ...[...g.architectures.header, "verdicts (stored runs)"]
    .map(h => el("th", { text: h })))),
    el("tbody", {}, ...g.architectures.rows.map(r => el("tr", {}, ...r.map(v => el("td", { text: v })),
      el("td", {}, ...((verdicts[r[0]] || []).length ? verdicts[r[0]].map(v => el("div", { title: v.sentence },
        verdictBadge(v.verdict), ` ${v.claim} (${v.study})`)) : [r[4] === "—" ? "no study yet" : "not yet run"]))))));
  const table = t => dataTable(t.header, t.rows);
  const remark = g.remark && (g.remark.groups || g.remark.all_groups) ? g.remark : null;
  body.append(el("p", { class: "dim", text: `From ${g.source}. Verdicts: the claims decided by the stored runs ` +
      "under this explorer's runs folder (paired over seeds, exact sign-flip tests, Holm within each study); hover " +
      "a verdict for its numbers." }),
    el("div", { class: "scroll-x" }, el("h3", { text: "By architecture" }), arch),
    el("div", { class: "scroll-x" }, el("h3", { text: "Output layer by task" }), table(g.outputs)),
    el("h3", { text: "Decision flowchart (the first yes decides)" }),
    el("ol", {}, ...g.flowchart.map(s => el("li", {}, `${s.question} → ${s.then} `,
      el("span", { class: "dim", text: `(${testedBy(s.tested_by)})` })))),
    el("h3", { text: "Rule of thumb" }),
    el("ul", {}, ...g.rules.map((r, i) => el("li", {}, `${r} `,
      el("span", { class: "dim", text: `(${testedBy((g.rules_tested_by || [])[i])})` }))),
      el("li", {}, "(the seeds' closing remark) activation choice rarely makes more than a few percentage points of " +
        "difference in final accuracy ", remark ? verdictBadge(remark.verdict) : null,
        el("span", { class: "dim", text: remark ? ` ${remark.sentence}` : ` (${testedBy(g.remark_tested_by)})` }))));
}

// The claims whose arms name this activation (in any slot), with their verdicts: shown on its card.
function cardClaims(name) {
  const box = el("div", { class: "card-claims" });
  guideData().then(g => {
    const names = arm => arm.split(",").some(p => p.split("=")[1]?.trim().toLowerCase() === name.toLowerCase());
    const mine = Object.entries(g.verdicts || {}).flatMap(([row, vs]) => vs.map(v => ({ ...v, guide: row })))
      .filter(v => names(v.better) || names(v.than));
    if (!mine.length) return;
    box.append(el("strong", { text: "The guide, tested (stored runs)" }),
      el("ul", {}, ...mine.map(v => el("li", { title: v.sentence }, verdictBadge(v.verdict),
        el("span", { class: "dim", text: names(v.better) ? " (for it)" : " (against it)" }),
        ` ${v.guide}: ${v.claim} (${v.study}${v.unfinished ? ", run not finished" : ""})`))));
  }).catch(() => {});  // the card stands without them
  return box;
}

// A gated entry φ(a)·b: its two-input function as a heat map (blue < 0 < red, white at 0; the dotted diagonal
// a = b is the curve drawn above), and its measured two-input properties with their meanings.
function gatedView(c) {
  const g = c.gated, n = g.grid.length, size = 240;
  const canvas = el("canvas", { width: size, height: size, class: "heat", "aria-label": `${c.name}(a, b) heat map` });
  const ctx = canvas.getContext("2d");
  let lim = 0;
  for (const row of g.z) for (const v of row) if (v != null) lim = Math.max(lim, Math.abs(v));
  lim = lim || 1;
  const cell = size / n;
  g.z.forEach((row, i) => row.forEach((v, j) => {
    const t = Math.max(-1, Math.min(1, (v ?? 0) / lim));
    const r = t > 0 ? 255 : Math.round(255 * (1 + t)), b = t < 0 ? 255 : Math.round(255 * (1 - t));
    const gr = Math.round(255 * (1 - Math.abs(t)));
    ctx.fillStyle = `rgb(${r},${gr},${b})`;
    ctx.fillRect(j * cell, size - (i + 1) * cell, cell + 0.5, cell + 0.5);  // rows: b upward
  }));
  ctx.setLineDash([3, 3]);
  ctx.strokeStyle = "#333";
  ctx.beginPath(); ctx.moveTo(0, size); ctx.lineTo(size, 0); ctx.stroke();
  const rows = g.properties.map(p => el("tr", { title: p.meaning }, el("th", { text: p.name.replaceAll("_", " ") }),
    el("td", { text: typeof p.value === "boolean" ? (p.value ? "yes" : "no") : fmt(p.value, 4) })));
  return el("div", { class: "gated" },
    el("p", { class: "dim", text: `${c.name}(a, b) = ${g.gate}(a)·b over a (→) and b (↑) from ${fmt(g.grid[0], 3)} to ` +
              `${fmt(g.grid[n - 1], 3)}; red above 0, blue below, ±${fmt(lim, 3)} at the ends; dotted: a = b. Two input projections: ` +
              "transformer FFNs only." }),
    canvas,
    el("strong", { text: "Two-input properties (a, b independent N(0, 1))" }),
    el("table", {}, el("tbody", {}, ...rows)),
    el("strong", { text: "Its diagonal x·φ(x), element-wise:" }));
}

function renderProps(curves) {
  const box = $("#act-props");
  box.innerHTML = "";
  const grid = el("div", { class: "props" });
  for (const c of curves) {
    const rows = Object.entries(c.table).map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v })));
    const g = c.guidance;
    const gated = c.gated ? gatedView(c) : null;
    grid.append(el("div", { class: "card" },
      el("h3", { text: c.label }),
      gated,
      el("table", {}, el("tbody", {}, ...rows)),
      el("strong", { text: "When to use" }),
      el("p", { text: g.note || "A user activation: no guideline; see the measured cautions." }),
      g.output_for.length ? el("p", { text: `Output layer for ${g.output_for.join(", ")} tasks.` }) : null,
      el("ul", {}, ...g.cautions.map(t => el("li", { text: t }))),
      cardClaims(c.name)));
  }
  box.append(grid);
}

// ------------------------------------------------------------------------------- live training
// One to four arms (activation and init) trained side by side as one population: same data, same seeds,
// same data order. Playground's layout: the controls and a large epoch counter on top, the data drawn as soon as
// the form says which, one card per arm with its decision surface and its loss sparkline together, the shared
// overlaid charts below (losses with seed bands, accuracy, gradients, dead units, signal trace). Events update
// the state; drawing happens once per animation frame (a burst of events after a busy spell is drawn once).

const LIVE_FIELDS = ["model", "dataset", "gan_output", "noise", "points", "train_pct", "widths", "features", "init",
                     "optimizer", "lr", "weight_decay", "batch_size", "epochs", "seeds"];
const GAN_SETS = ["ring", "grid"];  // the GAN's mixtures (the server's GAN_DATASETS; /api/datasets lists them too)
const NUMERIC = new Set(["noise", "points", "train_pct", "lr", "weight_decay", "batch_size", "epochs", "seeds"]);
const INIT_NAMES = ["kaiming_normal", "lecun_normal", "xavier_normal", "orthogonal"];
const MAX_LAYERS = 6, MAX_UNITS = 64;
const WAIT_MS = 1500;  // no event for this long while training: say the view is waiting for the machine

function liveForm() { return $("#live-form"); }

// the arms' rows: activation (the first required, the others may be "—") and init ("as below" or one)
function buildArmRows() {
  const holder = $("#live-arms-form");
  holder.innerHTML = "";
  for (let i = 0; i < 4; i++) {
    const act = el("select", { name: `arm${i}`, "aria-label": `arm ${i + 1} activation` });
    if (i) act.append(el("option", { value: "", text: "—" }));
    for (const a of actlab.catalog.filter(a => !a.vector && a.kind !== "gated")) act.append(el("option", { value: a.name, text: a.name }));
    const init = el("select", { name: `arm${i}_init`, "aria-label": `arm ${i + 1} init` },
      el("option", { value: "", text: "init as below" }), ...INIT_NAMES.map(n => el("option", { value: n, text: n })),
      el("option", { value: "default", text: "default (paired)" }));
    holder.append(el("div", { class: "arm-row" }, el("span", { class: "arm-no", text: String.fromCharCode(65 + i) }), act, init));
  }
}

// Playground's input features as check boxes, kept in the form's hidden "features" field (at least one stays on)
function buildFeatures() {
  const holder = $("#live-features"), form = liveForm();
  holder.innerHTML = "";
  for (const [name, label] of Object.entries(actlab.presets.features)) {
    const box = el("input", { type: "checkbox", value: name, "aria-label": `feature ${label}` });
    holder.append(el("label", { class: "feature" }, box, label));
  }
  if (!form.elements.features) form.append(el("input", { type: "hidden", name: "features", value: "x1,x2" }));
  holder.addEventListener("change", e => {
    e.stopPropagation();
    const on = [...holder.querySelectorAll("input:checked")].map(b => b.value);
    if (!on.length) { e.target.checked = true; return; }  // the network needs an input
    form.elements.features.value = on.join(",");
    onLiveForm();
  });
}

function syncFeatures() {
  const on = new Set(liveForm().elements.features.value.split(","));
  for (const b of $("#live-features").querySelectorAll("input")) b.checked = on.has(b.value);
}

function widthsOf() {
  return liveForm().elements.widths.value.split(",").map(Number).filter(n => Number.isInteger(n) && n >= 1);
}

// the hidden layers, Playground's way: + and − for layers, and for each layer's neurons
function buildLayers() {
  const w = widthsOf(), holder = $("#live-layers");
  holder.innerHTML = "";
  $("#layer-count").textContent = `${w.length} hidden layer${w.length === 1 ? "" : "s"}`;
  $("#layer-add").disabled = w.length >= MAX_LAYERS;
  $("#layer-remove").disabled = w.length <= 1;
  w.forEach((n, k) => {
    const set = v => { w[k] = Math.max(1, Math.min(MAX_UNITS, v)); setWidths(w); };
    holder.append(el("div", { class: "layer-row" }, el("span", { text: `layer ${k + 1}` }),
      el("button", { type: "button", class: "small", "aria-label": `fewer neurons in layer ${k + 1}`, text: "−",
                     onclick: () => set(n - 1), ...(n <= 1 ? { disabled: "" } : {}) }),
      el("span", { class: "units", text: `${n} neuron${n === 1 ? "" : "s"}` }),
      el("button", { type: "button", class: "small", "aria-label": `more neurons in layer ${k + 1}`, text: "+",
                     onclick: () => set(n + 1), ...(n >= MAX_UNITS ? { disabled: "" } : {}) })));
  });
}

function setWidths(w) {
  liveForm().elements.widths.value = w.join(",");
  buildLayers();
  onLiveForm();
}

// The model decides the datasets offered and the fields shown: a GAN learns the ring or the grid, its arms are the
// discriminator's activation, and it has no noise, point count, training share or features to set.
function applyModel(keep = null) {
  const form = liveForm(), gan = form.elements.model.value === "gan", sel = form.elements.dataset;
  const names = Object.keys(actlab.datasets || {}).filter(n => GAN_SETS.includes(n) === gan);
  const want = keep || sel.value;
  sel.innerHTML = "";
  for (const n of names) sel.append(el("option", { value: n, text: n }));
  sel.value = names.includes(want) ? want : names[0];
  for (const e of document.querySelectorAll(".gan-only")) e.style.display = gan ? "" : "none";
  for (const e of document.querySelectorAll(".classifier-form")) e.style.display = gan ? "none" : "";
  for (const f of ["noise", "points", "train_pct", "init"]) form.elements[f].closest("label").style.display = gan ? "none" : "";
  for (let i = 0; i < 4; i++) form.elements[`arm${i}_init`].style.display = gan ? "none" : "";  // a GAN's init: paired
  $("#live-arms-legend").textContent = gan ? "Compare discriminators (arms A–D; generator: ReLU)" : "Compare (arms A–D)";
}

// a dataset picked in the form brings the settings that show its point (the server's PRESETS)
function applyPreset(keep = null) {
  const form = liveForm(), p = actlab.presets.datasets[form.elements.dataset.value] || {};
  for (const [k, v] of Object.entries(p)) if (form.elements[k] && !(keep && keep.has(k))) form.elements[k].value = v;
}

function armsFromForm() {
  const form = liveForm(), arms = [];
  for (let i = 0; i < 4; i++) {
    const a = form.elements[`arm${i}`].value;
    if (a) arms.push({ activation: a, ...(form.elements[`arm${i}_init`].value ? { init: form.elements[`arm${i}_init`].value } : {}) });
  }
  return arms;
}

function renderLive() {
  let { params } = readHash();
  if (![...params.keys()].length && actlab.liveParams) params = actlab.liveParams;  // back from another view
  const form = liveForm();
  for (const f of LIVE_FIELDS) if (params.has(f) && f !== "dataset") form.elements[f].value = params.get(f);
  if (!params.has("model")) form.elements.model.value = "classifier";  // a link from before the GAN mode
  // a link from before per-layer widths: depth × width
  if (!params.has("widths") && (params.has("depth") || params.has("width")))
    form.elements.widths.value = Array(Number(params.get("depth") || 2)).fill(Number(params.get("width") || 8)).join(",");
  applyModel(params.get("dataset"));
  applyPreset(params);  // the dataset's settings where the link sets none
  // arms=relu,tanh:xavier_normal (an old link's activation=... is arm A)
  const arms = (params.get("arms") || params.get("activation") || "relu,tanh").split(",").filter(Boolean).slice(0, 4);
  for (let i = 0; i < 4; i++) {
    const [act, init] = (arms[i] || "").split(":");
    form.elements[`arm${i}`].value = act || (i ? "" : "relu");
    form.elements[`arm${i}_init`].value = init || "";
  }
  syncFeatures();
  buildLayers();
  if (!actlab.live || actlab.live.finished) schedulePreview(0);
}

function liveRequest() {
  const form = liveForm(), body = {}, params = new URLSearchParams();
  for (const f of LIVE_FIELDS) {
    const v = form.elements[f].value;
    params.set(f, v);
    if (NUMERIC.has(f) && v.trim() === "") continue;  // an emptied box: the server's default, not 0
    body[f] = NUMERIC.has(f) ? Number(v) : v;
  }
  if (body.train_pct != null) body.train_fraction = body.train_pct / 100;
  delete body.train_pct;
  body.widths = widthsOf();
  body.features = body.features.split(",").filter(Boolean);
  if (body.model === "gan") delete body.features;
  body.arms = armsFromForm();
  params.set("arms", body.arms.map(a => a.init ? `${a.activation}:${a.init}` : a.activation).join(","));
  writeHash("live", params);
  actlab.liveParams = params;
  return body;
}

function onLiveForm() {
  liveRequest();
  if (!actlab.live || actlab.live.finished) schedulePreview();
}

// ---- before Start: the data, the arms' cards and the network drawn from the form (POST /api/live/preview)

let previewTimer = null, previewSeq = 0;
function schedulePreview(delay = 120) {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(drawPreview, delay);
}

async function drawPreview() {
  const seq = ++previewSeq, body = liveRequest();
  try {
    const p = await api("/api/live/preview", { method: "POST", body: JSON.stringify(body) });
    if (seq !== previewSeq || (actlab.live && !actlab.live.finished)) return;  // a later form, or a training, won
    showError(null);
    resetCharts();
    for (const e of liveForm().querySelectorAll(".bad")) e.classList.remove("bad");
    for (const e of document.querySelectorAll(".classifier-only")) e.style.display = p.kind === "gan" ? "none" : "";
    $("#live-loss-title").textContent = p.kind === "gan" ? `Modes covered of ${p.modes.length} (mean; band: min–max over seeds)` :
      "Loss: training solid, test dashed (mean; band: min–max over seeds)";
    $("#live-acc-title").textContent = p.kind === "gan" ? "High-quality share: samples within 3σ of a mode (mean; band: min–max over seeds)" :
      "Test accuracy (mean; band: min–max over seeds)";
    const st = actlab.preview = { data: p, arms: p.arms, request: body, preview: true };
    buildCards(st, p.kind === "gan");
    if (p.kind === "gan") st.cards.forEach((card, i) => drawGan(card, p, p.arms[i], null));
    else st.cards.forEach(card => {
      drawSurfaceCanvas($("canvas.surface", card), ...previewGrid(p), null, st);
      drawDiagram($(".diagram", card), p.widths, null, p.features);
    });
    setEpoch(0, body.epochs);
    const n = body.seeds * p.arms.length;
    $("#live-status").textContent = p.kind === "gan"
      ? `Ready: the ${body.dataset} (${p.modes.length} modes), ${p.arms.length} arm${p.arms.length > 1 ? "s" : ""} × ${body.seeds} seeds. Press Start.`
      : `Ready: ${p.train.length} training and ${p.test.length} test points, ${p.arms.length} arm${p.arms.length > 1 ? "s" : ""} × ` +
        `${body.seeds} seeds (${n} networks ${p.widths.join("-")}). Press Start.`;
    $("#live-status").classList.remove("waiting");
  } catch (e) { if (seq === previewSeq) formError(e); }
}

// A setting the server refuses: said in the form's own words in the status, beside Start, where the eye is
// (and in the banner); the field's box is marked.
const FIELD_WORDS = { train_fraction: "training share of the points", lr: "learning rate", weight_decay: "L2 regularisation",
                      batch_size: "batch size", noise: "noise", points: "points", epochs: "epochs", seeds: "seeds per arm" };
function formError(e) {
  let msg = String(e && e.message ? e.message : e);
  msg = msg.replace(/widths\.(\d+)/g, (_, k) => `layer ${Number(k) + 1}'s neurons`)
           .replace(/\btrain_fraction: (.*?)\(given ([0-9.]+)\)/, (_, m, v) => `training share of the points: must be 10–90 % (given ${Math.round(v * 100)} %)`)
           .replace(/^([a-z_]+):/, (w, f) => FIELD_WORDS[f] ? `${FIELD_WORDS[f]}:` : w);
  showError(msg);
  const s = $("#live-status");
  s.classList.remove("waiting");
  s.textContent = /live trainings are running/.test(msg) ? `Cannot start now: ${msg}` : `Cannot train these settings: ${msg}`;
  for (const b of liveForm().querySelectorAll(".bad")) b.classList.remove("bad");
  const f = (msg.match(/^([a-z ]+?)(?: per arm)?:/) || [])[1];
  const name = Object.entries(FIELD_WORDS).find(([, w]) => f && w.startsWith(f));
  const box = name && liveForm().elements[name[0] === "train_fraction" ? "train_pct" : name[0]];
  if (box) box.classList.add("bad");
}

// the surface's box before there is a surface: the training points' range ± 0.5, as the server draws it
function previewGrid(p) {
  const xs = p.train.map(q => q[0]), ys = p.train.map(q => q[1]);
  return [[Math.min(...xs) - 0.5, Math.max(...xs) + 0.5], [Math.min(...ys) - 0.5, Math.max(...ys) + 0.5]];
}

// ---- training

function liveButtons(st) {
  const running = st && !st.finished;
  $("#live-start").disabled = !!running;
  $("#live-pause").disabled = !running;
  $("#live-pause").textContent = running && st.paused ? "Resume" : "Pause";
  $("#live-step").disabled = !(running && st.paused);
}

function setEpoch(e, total) {
  $("#live-epoch").textContent = String(e).padStart(6, "0").replace(/(\d{3})$/, ",$1");
  $("#live-of").textContent = `of ${total}`;
}

function resetCharts() {
  for (const id of ["#live-loss", "#live-acc", "#live-grad", "#live-dead", "#live-trace", "#live-arms"]) $(id).innerHTML = "";
  $("#live-trace-note").textContent = "";
  for (const e of document.querySelectorAll(".classifier-only")) e.style.display = "";
}

function resetLive() {
  if (actlab.live && actlab.live.source) actlab.live.source.close();
  if (actlab.live && actlab.live.id && !actlab.live.finished) fetch(`/api/live/${actlab.live.id}`, { method: "DELETE", headers: headers(actlab.live.token) });
  actlab.live = null;
  resetCharts();
  liveButtons(null);
  $("#live-status").classList.remove("waiting");
  $("#live-status").textContent = "Ready.";
  setEpoch(0, liveForm().elements.epochs.value);
  schedulePreview(0);
}

let starting = false;
async function startLive() {
  if (starting || (actlab.live && !actlab.live.finished)) return;  // a double click starts one training
  starting = true;
  $("#live-start").disabled = true;
  clearTimeout(previewTimer);
  previewSeq++;  // a preview still on its way is not drawn over the training
  const body = liveRequest(), t0 = performance.now();
  try {
    const s = await api("/api/live", { method: "POST", body: JSON.stringify(body) });
    showError(null);
    const st = actlab.live = { id: s.id, token: s.token, request: s.request, epochs: [], loss: [], testLoss: [], testAcc: [],
                               meanLoss: [], probes: [], surfaces: 0, finished: false, paused: false, t0, lastEvent: t0,
                               frames: 0, firstFrameMs: null, firstEpochMs: null, waited: 0, maxGap: 0, dirty: new Set() };
    liveButtons(st);
    setEpoch(0, body.epochs);
    $("#live-status").textContent = `Starting: ${body.seeds * Math.max(1, body.arms.length)} networks on the server…`;
    const es = st.source = new EventSource(`/api/live/${s.id}/events?token=${encodeURIComponent(s.token)}`);
    const on = (name, f) => es.addEventListener(name, e => {
      if (actlab.live !== st) { es.close(); return; }  // a training this page has left behind: not drawn
      const now = performance.now();
      if (!st.paused) st.maxGap = Math.max(st.maxGap, now - st.lastEvent);
      st.lastEvent = now;
      f(e);
    });
    on("start", e => onStart(st, JSON.parse(e.data)));
    on("epoch", e => onEpoch(st, JSON.parse(e.data)));
    on("surface", e => { st.surface = JSON.parse(e.data); schedule(st, "surface"); });
    on("probe", e => { st.probes.push(JSON.parse(e.data)); schedule(st, "probe"); });
    on("gan", e => onGan(st, JSON.parse(e.data)));
    on("done", e => finishLive(st, JSON.parse(e.data)));
    on("stopped", () => finishLive(st, null));
    es.addEventListener("error", e => {
      if (actlab.live !== st) { es.close(); return; }
      if (e.data) { showError(JSON.parse(e.data).detail); finishLive(st, null); }
      else if (!st.finished) { $("#live-status").textContent = "Connection lost."; finishLive(st, null); }
    });
  } catch (e) { formError(e); liveButtons(actlab.live); } finally { starting = false; }
}

// Events change the state and mark what is to be drawn; one animation frame draws it all (st.frames counts them)
function schedule(st, what) {
  st.dirty.add(what);
  if (st.frame) return;
  st.frame = requestAnimationFrame(() => {
    st.frame = null;
    if (actlab.live !== st) return;
    const dirty = st.dirty;
    st.dirty = new Set();
    if (dirty.has("surface") && st.surface) {
      drawSurfaces(st, st.surface);
      if (st.firstFrameMs == null) st.firstFrameMs = performance.now() - st.t0;
    }
    if (dirty.has("epoch")) {
      drawEpochs(st);
      if (st.firstEpochMs == null) st.firstEpochMs = performance.now() - st.t0;
    }
    if (dirty.has("probe") && st.probes.length) drawProbes(st);
    if (dirty.has("gan")) drawGanState(st);
    st.frames += 1;
  });
}

// while training, an update is due every few epochs: after WAIT_MS without one, say the view is waiting for the
// machine (a busy server trains slower; the stream catches up by itself)
setInterval(() => {
  const st = actlab.live;
  if (!st || st.finished || st.paused) return;
  const gap = performance.now() - st.lastEvent;
  if (gap < WAIT_MS) return;
  st.waited = Math.max(st.waited, gap);
  const s = $("#live-status");
  s.classList.add("waiting");
  s.textContent = `Waiting for the machine: no update for ${(gap / 1000).toFixed(0)} s` +
    (st.epochs.length ? ` (last: epoch ${st.epochs.at(-1)} of ${st.request.epochs})`
                      : st.data ? " (no epoch has finished yet)" : " (the server has not started this training yet)") +
    ". The server is busy or each epoch is long; training goes on and the view catches up by itself.";
}, 250);

function onStart(st, d) {
  st.data = d;
  st.arms = d.arms;
  const gan = d.kind === "gan";
  resetCharts();
  for (const e of document.querySelectorAll(".classifier-only")) e.style.display = gan ? "none" : "";
  $("#live-loss-title").textContent = gan ? `Modes covered of ${d.modes.length} (mean; band: min–max over seeds)` :
    "Loss: training solid, test dashed (mean; band: min–max over seeds)";
  $("#live-acc-title").textContent = gan ? "High-quality share: samples within 3σ of a mode (mean; band: min–max over seeds)" :
    "Test accuracy (mean; band: min–max over seeds)";
  const m = d.arms[d.arms.length - 1].stop;
  if (gan) {
    st.modes = Array.from({ length: m }, () => []);
    st.quality = Array.from({ length: m }, () => []);
  } else {
    st.loss = Array.from({ length: m }, () => []);
    st.testLoss = Array.from({ length: m }, () => []);
    st.testAcc = Array.from({ length: m }, () => []);
  }
  buildCards(st, gan);
  if (gan) st.cards.forEach((card, i) => drawGan(card, d, d.arms[i], null));
  else st.cards.forEach(card => drawDiagram($(".diagram", card), d.widths, null, d.features));
}

// One card per arm in #live-arms: its name in its colour, its surface (or a GAN's samples), its loss sparkline
// under it, the latest numbers, the result (filled in at the end) and, folded, what seed 0 looks like inside.
function buildCards(st, gan) {
  const holder = $("#live-arms"), seeds = st.request.seeds;
  holder.innerHTML = "";
  holder.classList.toggle("many", st.arms.length > 2);
  st.cards = st.arms.map((a, i) => {
    const views = gan ? [
      el("canvas", { class: "surface gan", width: 300, height: 300, "aria-label": `samples of ${a.label}` }),
      el("p", { class: "dim", text: "Seed 0's generator: 500 samples (coloured) over the modes (grey: 3σ discs); " +
        "faint: training points." })] : [
      el("canvas", { class: "surface", width: 300, height: 300, "aria-label": `decision surface of ${a.label}` }),
      el("div", { class: "colorbar" }, el("span", { text: "0" }), el("i"), el("span", { text: "1" }),
         el("span", { class: "dim", text: " P(class 1)" }))];
    const inside = gan ? null : el("details", { class: "inside", ...(st.arms.length <= 2 ? { open: "" } : {}) },
      el("summary", { text: "Inside seed 0: hidden space, neurons, network" }),
      el("h4", { text: "Hidden space (test points, first two units)" }), el("div", { class: "hidden-row" }),
      el("h4", { text: "Neurons: output over the input plane" }), el("div", { class: "neurons" }),
      el("h4", { text: "Network: red +, blue −, width |w|" }), el("div", { class: "diagram" }));
    const card = el("div", { class: "card arm", "data-arm": i },
      el("h3", { style: `color:${a.color}` }, el("span", { class: "swatch", style: `background:${a.color}` }), a.label),
      ...views,
      el("canvas", { class: "spark", width: 300, height: 64, "aria-label": `${gan ? "modes covered" : "loss"} of ${a.label}` }),
      el("p", { class: "arm-now", text: gan ? "modes covered, mean over seeds" : "loss: training solid, test dashed" }),
      el("p", { class: "dim arm-result", text: `${seeds} seed${seeds > 1 ? "s" : ""}` }), inside);
    holder.append(card);
    return card;
  });
}

const mean = v => { const f = v.filter(x => x != null && Number.isFinite(x)); return f.length ? f.reduce((a, b) => a + b, 0) / f.length : null; };
const lo = v => { const f = v.filter(x => x != null && Number.isFinite(x)); return f.length ? Math.min(...f) : null; };
const hi = v => { const f = v.filter(x => x != null && Number.isFinite(x)); return f.length ? Math.max(...f) : null; };

// per arm, per epoch index: the mean, min and max over the arm's seeds of a per-replica history
function armStats(st, rows) {
  return st.arms.map(a => {
    const mine = rows.slice(a.start, a.stop), out = { mean: [], lo: [], hi: [] };
    for (let j = 0; j < st.epochs.length; j++) {
      const col = mine.map(r => r[j]);
      out.mean.push(mean(col)); out.lo.push(lo(col)); out.hi.push(hi(col));
    }
    return out;
  });
}

// A sparkline: the arm's curves over epochs (solid, then dashed), on a log axis when asked, with its range
function drawSpark(c, x, curves, color, { logY = false, range = null } = {}) {
  const ctx = c.getContext("2d"), W = c.width, H = c.height, L = 4, R = 46, T = 6, B = 6;
  ctx.clearRect(0, 0, W, H);
  const ok = v => v != null && Number.isFinite(v) && (!logY || v > 0);
  const all = curves.flat().filter(ok);
  if (!all.length || x.length < 1) return;
  let [a, b] = range || [Math.min(...all), Math.max(...all)];
  if (logY) { a = Math.log10(a); b = Math.log10(b); }
  if (b - a < 1e-9) { a -= 0.5; b += 0.5; }
  const x0 = x[0], x1 = Math.max(x.at(-1), x0 + 1);
  const px = v => L + (v - x0) / (x1 - x0) * (W - L - R), py = v => T + (1 - ((logY ? Math.log10(v) : v) - a) / (b - a)) * (H - T - B);
  ctx.strokeStyle = "#e1e4e8"; ctx.lineWidth = 1; ctx.strokeRect(L, T, W - L - R, H - T - B);
  curves.forEach((ys, k) => {
    ctx.beginPath(); ctx.strokeStyle = color; ctx.lineWidth = 1.8; ctx.setLineDash(k ? [5, 3] : []);
    let pen = false;
    ys.forEach((v, i) => { if (!ok(v)) { pen = false; return; } if (pen) ctx.lineTo(px(x[i]), py(v)); else ctx.moveTo(px(x[i]), py(v)); pen = true; });
    ctx.stroke();
  });
  ctx.setLineDash([]);
  ctx.fillStyle = "#566070"; ctx.font = "10px system-ui"; ctx.textAlign = "left";
  const lab = v => logY ? fmt(10 ** v, 2) : String(+v.toPrecision(2));
  ctx.fillText(lab(b), W - R + 4, T + 8);
  ctx.fillText(lab(a), W - R + 4, H - B);
}

// A line chart: each series {label, color, dash, values, lo, hi} (lo/hi: a band), our own legend (names and
// line styles) and a hover read-out of every series at the cursor.
function linePlot(container, x, series, { logY = false, xLabel = "", yLabel = "", height = 260, yRange = null, intX = false,
                                         spanGaps = false } = {}) {
  // the same chart with new numbers (a live training's next epochs): uPlot's setData, not a new chart
  const key = JSON.stringify([series.map(s => [s.label, s.color, s.dash, !!s.lo]), logY, xLabel, yLabel, height, yRange, intX,
                              container.clientWidth, x.length < 12]);  // points are drawn on short series only
  const old = container._plot;
  if (old && old.key === key && container.contains(old.u.root)) {
    const data = [x];
    for (const s of series) { if (s.lo && s.hi) data.push(s.hi, s.lo); data.push(s.values); }
    old.u.series_ = series;
    old.u.setData(data);
    return old.u;
  }
  container.innerHTML = "";
  const legend = el("div", { class: "legend" }), readout = el("div", { class: "readout dim", text: "hover for values" });
  const holder = el("div");
  container.append(holder, legend, readout);
  const sers = [{ label: xLabel }], data = [x], bands = [];
  for (const s of series) {
    if (s.lo && s.hi) {
      const i = data.length;
      sers.push({ label: "", stroke: "transparent", width: 0, points: { show: false } },
                { label: "", stroke: "transparent", width: 0, points: { show: false } });
      data.push(s.hi, s.lo);
      bands.push({ series: [i, i + 1], fill: s.color + (s.dash ? "18" : "2a") });
    }
    sers.push({ label: s.label, stroke: s.color, width: s.width || 2, dash: s.dash || undefined, points: { show: x.length < 12 },
                spanGaps });
    data.push(s.values);
    const key = el("span", { class: "key" });
    key.innerHTML = `<svg width="28" height="10" aria-hidden="true"><line x1="1" y1="5" x2="27" y2="5" stroke="${s.color}" ` +
      `stroke-width="2.5" ${s.dash ? `stroke-dasharray="${s.dash.join(" ")}"` : ""}/></svg>`;
    key.append(s.label);
    legend.append(key);
  }
  const width = Math.max(240, container.clientWidth || 560);
  const axisX = { label: xLabel };
  if (intX) axisX.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  const u = new uPlot({
    width, height, series: sers, bands,
    scales: { x: { time: false }, y: logY ? { distr: 3 } : yRange ? { range: yRange } : {} },
    axes: [axisX, { label: yLabel, size: 64, values: logY ? logTicks : undefined }],
    legend: { show: false },
    hooks: { setCursor: [p => {
      const i = p.cursor.idx;
      if (i == null) return;
      const xs = p.data[0], xv = Number.isInteger(xs[i]) ? xs[i] : fmt(xs[i], 4);
      readout.textContent = `${xLabel} ${xv}: ` + p.series_.map(s => `${s.label} ${fmt(s.values[i], 3)}`).join(" · ");
    }] },
  }, data, holder);
  u.series_ = series;
  container._plot = { u, key };
  return u;
}

// log-axis tick labels: powers of ten as 10⁻⁴, other ticks as plain numbers
const SUP = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
function logTicks(u, vals) {
  const pow = v => v != null && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
  // under two powers of ten in view (a span under a decade): every tick as a plain number
  if (vals.filter(pow).length < 2) return vals.map(v => v == null ? "" : String(+v.toPrecision(3)));
  return vals.map(v => {
    if (!pow(v)) return "";
    const k = Math.round(Math.log10(v));
    return k >= 0 && k <= 3 ? String(10 ** k) : "10" + String(k).split("").map(c => SUP[c]).join("");
  });
}

function onEpoch(st, d) {
  st.epochs.push(...d.epochs);
  d.loss.forEach((row, s) => st.loss[s].push(...row));
  d.test_loss.forEach((row, s) => st.testLoss[s].push(...row));
  d.test_acc.forEach((row, s) => st.testAcc[s].push(...row));
  // epochs per second since the last start or resume (a pause is not counted)
  const now = performance.now();
  if (st.rateAt == null) { st.rateAt = now; st.rateFrom = st.epochs.at(-1); }
  st.rate = now > st.rateAt ? (st.epochs.at(-1) - st.rateFrom) / ((now - st.rateAt) / 1000) : null;
  schedule(st, "epoch");
}

function statusLine(st, numbers = st.numbers) {
  st.numbers = numbers;
  const last = st.epochs.at(-1), rate = st.rate && Number.isFinite(st.rate) && st.rate > 0 ? ` · ${fmt(st.rate, 2)} epochs/s` : "";
  const s = $("#live-status");
  s.classList.remove("waiting");
  s.textContent = `epoch ${last} of ${st.request.epochs}${st.paused ? " (paused)" : ""}${rate} · ${numbers} ` +
    `(mean of ${st.data.seeds.length} seeds each)`;
  setEpoch(last, st.request.epochs);
}

function drawEpochs(st) {
  const train = armStats(st, st.loss), test = armStats(st, st.testLoss), acc = armStats(st, st.testAcc);
  st.meanLoss = train[0].mean;
  st.armLoss = train.map(t => t.mean);
  st.armTestLoss = test.map(t => t.mean);
  const lossSeries = [], accSeries = [], last = st.epochs.length - 1;
  st.arms.forEach((a, i) => {
    lossSeries.push({ label: `${a.label} train`, color: a.color, values: train[i].mean, lo: train[i].lo, hi: train[i].hi });
    lossSeries.push({ label: `${a.label} test`, color: a.color, dash: [6, 4], values: test[i].mean, lo: test[i].lo, hi: test[i].hi });
    accSeries.push({ label: a.label, color: a.color, values: acc[i].mean, lo: acc[i].lo, hi: acc[i].hi });
    drawSpark($("canvas.spark", st.cards[i]), st.epochs, [train[i].mean, test[i].mean], a.color, { logY: true });
    $(".arm-now", st.cards[i]).textContent = `loss ${fmt(train[i].mean[last], 3)} training, ${fmt(test[i].mean[last], 3)} test · ` +
      `test accuracy ${fmt(acc[i].mean[last], 3)}`;
  });
  st.lossPlot = linePlot($("#live-loss"), st.epochs, lossSeries, { xLabel: "epoch", yLabel: "loss", logY: true });
  st.accPlot = linePlot($("#live-acc"), st.epochs, accSeries, { xLabel: "epoch", yLabel: "test accuracy", yRange: [0, 1] });
  statusLine(st, st.arms.map((a, i) => `${a.label}: test accuracy ${fmt(acc[i].mean[last], 3)}`).join(" · "));
}

// A live GAN: per arm a card with the first seed's samples over the modes (grey discs: 3σ, where a sample counts
// as high quality; faint dots: training points), and two charts over epochs, the modes covered and the high-quality
// share, per arm over its seeds.
function drawGan(card, d, arm, pts) {
  const canvas = $("canvas", card), ctx = canvas.getContext("2d"), size = canvas.width, span = 1.2;
  const px = v => (v + span) / (2 * span) * size, py = v => size - (v + span) / (2 * span) * size;
  ctx.clearRect(0, 0, size, size);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = "rgba(0,0,0,0.08)";
  for (const [x, y] of d.train) ctx.fillRect(px(x) - 0.5, py(y) - 0.5, 1.5, 1.5);
  ctx.fillStyle = "rgba(90,90,90,0.35)";
  const r = Math.max(5, 3 * d.sigma / (2 * span) * size);
  for (const [x, y] of d.modes) { ctx.beginPath(); ctx.arc(px(x), py(y), r, 0, 2 * Math.PI); ctx.fill(); }
  if (!pts) return;
  ctx.fillStyle = arm.color;
  for (const p of pts) if (p && p[0] != null && p[1] != null) ctx.fillRect(px(p[0]) - 1, py(p[1]) - 1, 2.2, 2.2);
}

function onGan(st, d) {
  st.epochs.push(...d.epochs);
  for (let k = 0; k < d.epochs.length; k++) d.modes[k].forEach((v, s) => { st.modes[s].push(v); st.quality[s].push(d.high_quality[k][s]); });
  st.samples = d.samples;
  schedule(st, "gan");
}

function drawGanState(st) {
  st.arms.forEach((a, i) => drawGan(st.cards[i], st.data, a, st.samples[i]));
  const modes = armStats(st, st.modes), hq = armStats(st, st.quality), k = st.data.modes.length;
  const line = (stats, i, a) => ({ label: a.label, color: a.color, values: stats[i].mean, lo: stats[i].lo, hi: stats[i].hi });
  const last = st.epochs.length - 1;
  st.arms.forEach((a, i) => {
    drawSpark($("canvas.spark", st.cards[i]), st.epochs, [modes[i].mean], a.color, { range: [0, k] });
    $(".arm-now", st.cards[i]).textContent = `modes covered ${fmt(modes[i].mean[last], 3)} of ${k} · high-quality share ${fmt(hq[i].mean[last], 3)}`;
  });
  linePlot($("#live-loss"), st.epochs, st.arms.map((a, i) => line(modes, i, a)),
    { xLabel: "epoch", yLabel: "modes covered", yRange: [0, k] });
  linePlot($("#live-acc"), st.epochs, st.arms.map((a, i) => line(hq, i, a)),
    { xLabel: "epoch", yLabel: "high-quality share", yRange: [0, 1] });
  statusLine(st, st.arms.map((a, i) => `${a.label}: ${fmt(modes[i].mean[last], 3)} modes`).join(" · "));
}

// One colour scale for everything the live view shades: blue (negative, class 0) to white to red (positive,
// class 1), as in the report: the surfaces (P(class 1)), the neurons' outputs, the network's edges, the points.
const NEG = "#0b3d91", POS = "#b3001b";
function probColor(p) {
  return p < 0.5 ? [70 + 370 * p, 130 + 250 * p, 255] : [255, 255 - 300 * (p - 0.5), 255 - 380 * (p - 0.5)];
}

function niceTicks(a, b, n = 5) {
  const span = b - a, raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map(k => k * mag).find(s => span / s <= n) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(a / step) * step; v <= b + 1e-9; v += step) out.push(Math.abs(v) < 1e-12 ? 0 : v);
  return out;
}

// The decision surface over the grid gx × gy (grid null: before training, the box [gx0, gx1] × [gy0, gy1] with
// the points only), the training points filled and the test points hollow
function drawSurfaceCanvas(c, gx, gy, grid, st) {
  const ctx = c.getContext("2d"), L = 30, B = 22, W = c.width - L - 4, H = c.height - B - 4;
  const nx = gx.length, ny = gy.length;
  ctx.clearRect(0, 0, c.width, c.height);
  if (grid) {
    const img = ctx.createImageData(nx, ny);
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
      const rgb = probColor(grid[j][i] ?? 0.5), k = 4 * ((ny - 1 - j) * nx + i);
      img.data[k] = rgb[0]; img.data[k + 1] = rgb[1]; img.data[k + 2] = rgb[2]; img.data[k + 3] = 210;
    }
    const off = document.createElement("canvas");
    off.width = nx; off.height = ny;
    off.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(off, L, 4, W, H);
  } else { ctx.fillStyle = "#fbfbfc"; ctx.fillRect(L, 4, W, H); }
  const [x0, x1, y0, y1] = [gx[0], gx[nx - 1], gy[0], gy[ny - 1]];
  const px = x => L + (x - x0) / (x1 - x0) * W, py = y => 4 + (1 - (y - y0) / (y1 - y0)) * H;
  ctx.strokeStyle = "#566070"; ctx.fillStyle = "#33404f"; ctx.font = "10px system-ui"; ctx.lineWidth = 1;
  ctx.strokeRect(L, 4, W, H);
  ctx.textAlign = "center";
  for (const t of niceTicks(x0, x1)) { ctx.beginPath(); ctx.moveTo(px(t), 4 + H); ctx.lineTo(px(t), 8 + H); ctx.stroke(); ctx.fillText(String(+t.toFixed(2)), px(t), H + 18); }
  ctx.textAlign = "right";
  for (const t of niceTicks(y0, y1)) { ctx.beginPath(); ctx.moveTo(L - 4, py(t)); ctx.lineTo(L, py(t)); ctx.stroke(); ctx.fillText(String(+t.toFixed(2)), L - 6, py(t) + 3); }
  if (!st.data) return;
  const draw = (pts, ys, hollow) => pts.forEach(([x, y], i) => {
    ctx.beginPath();
    ctx.arc(px(x), py(y), 2.6, 0, 2 * Math.PI);
    ctx.fillStyle = ctx.strokeStyle = ys[i] ? POS : NEG;
    if (hollow) ctx.stroke(); else ctx.fill();
  });
  draw(st.data.train, st.data.train_y, false);
  draw(st.data.test, st.data.test_y, true);
}

function drawScatter(c, pts, ys) {
  const ctx = c.getContext("2d"), W = c.width, H = c.height;
  ctx.clearRect(0, 0, W, H);
  const xs = pts.map(p => p[0]), yv = pts.map(p => p.length > 1 ? p[1] : 0);
  const f = v => v.filter(Number.isFinite);
  const [ax, bx, ay, by] = [Math.min(...f(xs)), Math.max(...f(xs)), Math.min(...f(yv)), Math.max(...f(yv))];
  const sx = (bx - ax) || 1, sy = (by - ay) || 1;
  pts.forEach((p, i) => {
    if (!Number.isFinite(xs[i]) || !Number.isFinite(yv[i])) return;
    ctx.beginPath();
    ctx.arc(6 + (xs[i] - ax) / sx * (W - 12), H - 6 - (yv[i] - ay) / sy * (H - 12), 2, 0, 2 * Math.PI);
    ctx.fillStyle = ys[i] ? POS : NEG;
    ctx.fill();
  });
}

// a neuron's output over the input plane, on the shared scale: −scale blue, 0 white, +scale red
function drawNeuron(c, map, scale) {
  const ny = map.length, nx = map[0].length, ctx = c.getContext("2d"), img = ctx.createImageData(nx, ny);
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    const v = Math.max(-1, Math.min(1, (map[j][i] ?? 0) / scale)), k = 4 * ((ny - 1 - j) * nx + i);
    const rgb = probColor((v + 1) / 2);
    img.data[k] = rgb[0]; img.data[k + 1] = rgb[1]; img.data[k + 2] = rgb[2]; img.data[k + 3] = 255;
  }
  const off = document.createElement("canvas");
  off.width = nx; off.height = ny;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, c.width, c.height);
}

// The network: up to 8 units per layer; edges red (+) or blue (−), width |w| (weights null: before training, grey);
// the inputs named by their features
function drawDiagram(holder, widths, weights, features = null) {
  const W = 300, H = 170, cols = widths.length, shown = widths.map(w => Math.min(w, 8)), left = features ? 44 : 18;
  const x = k => left + k * (W - left - 18) / (cols - 1), y = (k, i) => H / 2 + (i - (shown[k] - 1) / 2) * 18;
  let max = 1e-9;
  if (weights) for (const m of weights) for (const row of m) for (const v of row) if (v != null) max = Math.max(max, Math.abs(v));
  let s = `<svg viewBox="0 0 ${W} ${H}" width="100%" style="max-width:${W}px" role="img" aria-label="network diagram">`;
  if (weights) weights.forEach((m, k) => m.forEach((row, i) => row.forEach((v, j) => {
    if (v == null || i >= shown[k] || j >= shown[k + 1]) return;
    s += `<line x1="${x(k)}" y1="${y(k, i)}" x2="${x(k + 1)}" y2="${y(k + 1, j)}" stroke="${v >= 0 ? POS : NEG}" ` +
         `stroke-width="${(0.3 + 3 * Math.abs(v) / max).toFixed(2)}" stroke-opacity="0.7"/>`;
  })));
  else for (let k = 0; k + 1 < cols; k++) for (let i = 0; i < shown[k]; i++) for (let j = 0; j < shown[k + 1]; j++)
    s += `<line x1="${x(k)}" y1="${y(k, i)}" x2="${x(k + 1)}" y2="${y(k + 1, j)}" stroke="#c7ccd3" stroke-width="0.6"/>`;
  widths.forEach((w, k) => {
    for (let i = 0; i < shown[k]; i++) s += `<circle cx="${x(k)}" cy="${y(k, i)}" r="5" fill="#fff" stroke="#33404f"/>`;
    if (w > shown[k]) s += `<text x="${x(k)}" y="${H - 4}" font-size="9" text-anchor="middle" fill="#566070">+${w - shown[k]}</text>`;
  });
  if (features) features.slice(0, shown[0]).forEach((f, i) =>
    s += `<text x="${x(0) - 8}" y="${y(0, i) + 3}" font-size="9" text-anchor="end" fill="#33404f">${f}</text>`);
  holder.innerHTML = s + "</svg>";
}

function drawSurfaces(st, d) {
  st.surfaces += 1;
  const which = $("#live-show").value;  // "mean" or "first"
  st.arms.forEach((a, i) => {
    const card = st.cards[i];
    const canvas = $("canvas.surface", card);
    drawSurfaceCanvas(canvas, d.gx, d.gy, which === "first" ? d.first[i] : d.mean[i], st);
    // a checksum of each drawn surface (tests check that every arm's surface updates)
    const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    for (let k = 0; k < px.length; k += 4) sum = (sum * 31 + px[k] + 7 * px[k + 2]) % 1000000007;
    (st.surfaceSums ||= st.arms.map(() => [])).at(i).push(sum);
    const row = $(".hidden-row", card);
    row.innerHTML = "";
    d.hidden[i].forEach((h, k) => {
      const c = el("canvas", { width: 110, height: 110 });
      row.append(el("figure", { class: "mini" }, c, el("figcaption", { text: `layer ${k + 1} · std ${fmt(h.std, 2)}` })));
      drawScatter(c, h.points, d.hidden_y);
    });
    const nholder = $(".neurons", card);
    nholder.innerHTML = "";
    d.neurons.maps[i].forEach((layer, k) => {
      let scale = 1e-9;
      for (const m of layer) for (const r of m) for (const v of r) if (v != null) scale = Math.max(scale, Math.abs(v));
      const tiles = el("div", { class: "tiles" });
      layer.forEach(m => { const c = el("canvas", { width: 40, height: 40 }); tiles.append(c); drawNeuron(c, m, scale); });
      nholder.append(el("div", { class: "dim", text: `layer ${k + 1}: units 1–${layer.length} of ${st.data.widths[k + 1]}, ` +
                                                   `blue −${fmt(scale, 2)} to red +${fmt(scale, 2)}` }), tiles);
    });
    drawDiagram($(".diagram", card), st.data.widths, d.weights[i], st.data.features);
  });
  // the signal trace of the two far points: mean |a| per layer (and |z| of the output), mean over seeds
  const layers = Object.keys(d.trace).filter(k => k.startsWith("a")).length;
  const x = Array.from({ length: layers + 1 }, (_, k) => k + 1), series = [];
  st.arms.forEach((a, i) => [0, 1].forEach(p => {
    const vals = x.map((_, k) => (k < layers ? d.trace[`a${k + 1}`] : d.trace.z_out)[i][p]);
    series.push({ label: `${a.label} point ${p + 1}`, color: a.color, dash: p ? [6, 4] : null, values: vals });
  }));
  st.tracePlot = linePlot($("#live-trace"), x, series, { xLabel: "layer (last = output |z|)", yLabel: "mean |a|", logY: true, height: 240, intX: true });
  $("#live-trace-note").textContent = `epoch ${d.epoch}; points ${st.data.trace_points.map(p => `(${p.map(v => fmt(v, 3)).join(", ")})`).join(" and ")}`;
}

function drawProbes(st) {
  const d = st.probes.at(-1), first = st.probes[0], x = d.layers.map((_, i) => i + 1), g = [], dd = [];
  const hidden = d.hidden.map((n, i) => [n, i]).filter(([n]) => n !== "output").map(([, i]) => i);
  st.arms.forEach((a, i) => {
    g.push({ label: `${a.label} epoch ${first.epoch}`, color: a.color, dash: [3, 3], width: 1.2, values: first.grad_norm[i] });
    g.push({ label: `${a.label} epoch ${d.epoch}`, color: a.color, values: d.grad_norm[i] });
    dd.push({ label: `${a.label} epoch ${d.epoch}`, color: a.color, values: hidden.map(k => d.dead_fraction[i][k]) });
  });
  st.gradPlot = linePlot($("#live-grad"), x, g, { xLabel: "layer (last = output)", yLabel: "‖∂L/∂W‖", logY: true, height: 240, intX: true });
  st.deadPlot = linePlot($("#live-dead"), hidden.map(k => k + 1), dd, { xLabel: "hidden layer", yLabel: "dead fraction", height: 240, yRange: [0, 1], intX: true });
}

function finishLive(st, d) {
  st.finished = true;
  st.doneMs = performance.now() - st.t0;
  if (st.source) st.source.close();  // this training's stream, not whichever is open now
  liveButtons(st);
  $("#live-status").classList.remove("waiting");
  if (st.frame) { cancelAnimationFrame(st.frame); st.frame = null; }
  // what the last frame had not drawn yet, drawn now
  if (st.dirty && st.dirty.size && st.data) {
    const dirty = st.dirty;
    st.dirty = new Set();
    if (dirty.has("surface") && st.surface) drawSurfaces(st, st.surface);
    if (dirty.has("epoch")) drawEpochs(st);
    if (dirty.has("probe") && st.probes.length) drawProbes(st);
    if (dirty.has("gan")) drawGanState(st);
  }
  if (d && st.data && st.data.kind === "gan") {
    st.result = d;
    d.arms.forEach((r, i) => {
      if (st.cards && st.cards[i]) $(".arm-result", st.cards[i]).textContent = `modes covered ${fmt(r.modes, 3)} ` +
        `[${fmt(r.lo, 3)}, ${fmt(r.hi, 3)}] of ${d.modes_total} (95 % CI, n = ${r.n} seeds) · high-quality share ` +
        `${fmt(r.high_quality, 3)}` + (r.diverged ? ` · ${r.diverged} diverged` : "");
    });
    setEpoch(d.epoch, d.epoch);
    $("#live-status").textContent = `done: ${d.epoch} epochs in ${d.wall_s} s · ` +
      d.arms.map(r => `${r.label} ${fmt(r.modes, 3)} of ${d.modes_total} modes`).join(" · ") + " (mean over seeds)";
    return;
  }
  if (d) {
    st.result = d;
    (d.arms || []).forEach((r, i) => {
      if (st.cards && st.cards[i]) $(".arm-result", st.cards[i]).textContent =
        `final test accuracy ${fmt(r.test_acc, 3)} [${fmt(r.lo, 3)}, ${fmt(r.hi, 3)}] (95 % CI, n = ${r.n} seeds)` + (r.diverged ? ` · ${r.diverged} diverged` : "");
    });
    setEpoch(d.epoch, d.epoch);
    $("#live-status").textContent = `done: ${d.epoch} epochs in ${d.wall_s} s · ` +
      (d.arms || []).map(r => `${r.label} ${fmt(r.test_acc, 3)} [${fmt(r.lo, 3)}, ${fmt(r.hi, 3)}]`).join(" · ") +
      ` (final test accuracy, 95 % CI, n = ${d.n} seeds each)`;
  } else if (!$("#error").hidden) $("#live-status").textContent = "Stopped with an error.";
  else $("#live-status").textContent = "Stopped.";
}

async function togglePause() {
  const st = actlab.live;
  if (!st || st.finished) return;
  const r = await api(`/api/live/${st.id}/${st.paused ? "resume" : "pause"}`, { method: "POST" }, st.token);
  st.paused = r.state === "paused";
  st.lastEvent = performance.now();  // waiting starts counting from the resume, not from before the pause
  st.rateAt = null;  // and the speed is measured afresh
  liveButtons(st);
  if (st.paused) {
    $("#live-status").classList.remove("waiting");
    if (st.epochs.length) statusLine(st); else $("#live-status").textContent = "Paused before the first epoch ended.";
  }
}

async function stepLive() {
  const st = actlab.live;
  if (!st || st.finished || !st.paused) return;
  try { await api(`/api/live/${st.id}/step`, { method: "POST" }, st.token); } catch (e) { showError(e); }
}

// ------------------------------------------------------------------------------------------ runs

async function renderRuns() {
  const { params } = readHash();
  try {
    const res = await api("/api/runs");
    $("#runs-root").textContent = res.root;
    const current = params.get("run"), other = params.get("with");
    const go = (run, withRun) => {
      const q = new URLSearchParams({ run });
      if (withRun && withRun !== run) q.set("with", withRun);
      writeHash("runs", q);
      renderRuns();
    };
    const rows = res.runs.map(r => {
      // a row opens its run; its "compare" button puts it beside the run already open
      const cmp = el("button", { type: "button", class: "secondary small", title: "show beside the open run",
                                 "aria-label": `compare ${r.path}`, text: "compare",
                                 onclick: e => { e.stopPropagation(); go(current || r.path, current ? r.path : null); } });
      if (!current || r.path === current) cmp.disabled = true;
      const tr = el("tr", { "data-path": r.path, onclick: () => go(r.path, null) },
        el("td", { text: r.path }), el("td", { text: r.kind }),
        // an unreadable store says why in place of its cells; a suite counts its studies
        el("td", r.error ? { text: r.error, class: "small", title: r.error }
                         : { text: r.kind === "suite" || r.kind === "folder" ? `${r.studies} studies`
                                                      : Object.entries(r.cells).map(([k, v]) => `${v} ${k}`).join(", ") }),
        el("td", {}, cmp));
      if (r.kind === "suite" || r.kind === "folder") cmp.disabled = true;  // a suite opens to its overview; its studies compare
      if (r.path === current) tr.className = "sel";
      else if (r.path === other) tr.className = "sel2";
      return tr;
    });
    const list = $("#runs-list");
    list.innerHTML = "";
    list.append(rows.length ? el("table", { class: "runs-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "run" }), el("th", { text: "kind" }), el("th", { text: "cells" }), el("th"))),
      el("tbody", {}, ...rows)) : el("p", { class: "dim", text: "No runs yet: actlab run writes them here." }));
    const box = $("#run-detail");
    if (current && other) {  // two runs: what differs, the cells both ran in one table, curves overlaid; then both
      box.innerHTML = "";
      const left = el("div", { class: "run-col" }), right = el("div", { class: "run-col" }), diff = el("div", { id: "run-diff" });
      box.append(el("p", {}, `Comparing two runs. `, el("a", { href: "#", id: "close-compare", text: "Close the comparison",
        onclick: e => { e.preventDefault(); go(current, null); } })), diff, el("h3", { text: "Each run whole" }),
        el("div", { class: "run-compare" }, left, right));
      actlab.runWith = null;
      actlab.compare = null;
      await showRun(current, false, left);
      actlab.runWith = await showRun(other, false, right, false);
      await drawCompare(diff, current, other);  // last: its error is not cleared by the runs' own pages
    } else if (current) {
      actlab.runWith = null;
      await showRun(current);
    }
  } catch (e) { showError(e); }
}

// Two runs compared (GET /api/compare): the settings that differ (a's value, b's value), the cells both ran with
// each run's score and b − a paired by seed, the cells only one has, and per metric one chart with every shared
// cell's mean curve, run a solid and run b dashed, one colour per cell.
async function drawCompare(box, a, b) {
  try {
    const c = actlab.compare = await api(`/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
    const cellTable = (header, rows) => el("div", { class: "scroll-x" }, dataTable(header, rows));
    const show = v => v == null ? "(not set)" : typeof v === "object" ? JSON.stringify(v) : String(v);
    box.append(el("h3", { text: `What differs: a = ${c.a.path}, b = ${c.b.path}` }),
      c.diff.length ? cellTable(["setting", `a: ${c.a.name}`, `b: ${c.b.name}`],
                                c.diff.map(d => [d.path, el("mark", { class: "a", text: show(d.a) }), el("mark", { class: "b", text: show(d.b) })]))
                    : el("p", { text: "Nothing: the two runs have the same configuration." }),
      el("p", { class: "dim", text: `${c.same} other settings are the same in both.` }));
    const sims = c.kinds.includes("simulation");
    const scores = [...new Set(c.shared.map(r => r.score + (r.lower_better ? ", lower is better" : "")))];
    box.append(el("h3", { text: `Cells both ran (${c.shared.length})` + (scores.length ? `: ${scores.join("; ")}` : "") }));
    if (c.shared.length) box.append(cellTable(["cell", "b − a (paired by seed)", `a: ${c.a.name}`, `b: ${c.b.name}`],
      c.shared.map(r => [r.cell, r.diff ? r.diff.text.replace(" (paired by seed, ", " (") : r.note || "—",
                         r.a ? r.a.text : "—", r.b ? r.b.text : "—"])));
    else box.append(el("p", { class: "dim", text: sims ? "A simulation has no cells scored over seeds to align: compare its " +
      "tables in the two columns below." : "None: the runs share no cell label, so nothing is aligned." }));
    if (c.only_a.length) box.append(el("p", { class: "dim", text: `Only in a: ${c.only_a.join("; ")}` }));
    if (c.only_b.length) box.append(el("p", { class: "dim", text: `Only in b: ${c.only_b.join("; ")}` }));
    const cells = [...new Set(Object.values(c.curves).flatMap(m => m.series.map(s => s.cell)))];
    const colour = (cell, given) => given || SEED_COLORS[cells.indexOf(cell) % SEED_COLORS.length];
    const grid = el("div", { class: "grid2" });
    box.append(grid);
    for (const [metric, m] of Object.entries(c.curves)) {
      const x = [...new Set(m.series.flatMap(s => s.epochs))].sort((p, q) => p - q), at = new Map(x.map((e, i) => [e, i]));
      const series = m.series.map(s => {
        const values = Array(x.length).fill(null);
        s.epochs.forEach((e, i) => { values[at.get(e)] = s.mean[i]; });
        return { label: `${s.cell} (${s.run})`, color: colour(s.cell, s.color), dash: s.run === "b" ? [6, 4] : null, values };
      });
      const holder = el("div", { class: "plot", "data-metric": metric });
      grid.append(el("div", {}, el("h3", { text: `${m.name[0].toUpperCase() + m.name.slice(1)}: a solid, b dashed (mean over seeds)` }), holder));
      linePlot(holder, x, series, { xLabel: "epoch", yLabel: m.name, logY: metric.endsWith("loss"), spanGaps: true,
                                    yRange: metric.endsWith("acc") ? [0, 1] : null, height: 240 });
    }
  } catch (e) { showError(e); }
}

// a suite's folder: its studies, one row each (cells, the source's numbers, headline), each opening its run
function showSuite(r, box) {
  const link = m => { const dir = m.path.split("/").pop();
    return el("a", { href: `#runs?run=${encodeURIComponent(m.path)}`, text: dir === m.name ? m.name : `${m.name} (${dir})` }); };
  // DOM append writes a null as the text "null": only the parts this folder has
  box.append(...[el("h2", { text: `${r.name} (${r.kind === "suite" ? "a suite of" : "a folder of"} ${r.members.length} studies)` }),
    r.report_url ? el("p", {}, el("a", { href: r.report_url, target: "_blank", text: "Open the suite's report" })) : null,
    el("div", { class: "scroll-x" }, dataTable(["study", "cells", "the source's numbers", "headline"],
      r.members.map(m => [link(m), m.cells, m.source, m.headline]), { class: "suite-table" }))].filter(Boolean));
}

async function showRun(path, build = false, box = $("#run-detail"), main = true) {
  try {
    const r = await api(`/api/runs/${path}${build ? "/report" : ""}`, build ? { method: "POST" } : {});
    if (main) actlab.run = r;
    showError(null);
    box.innerHTML = "";
    if (r.kind === "suite" || r.kind === "folder") { showSuite(r, box); return r; }
    // DOM append writes a null as the text "null": only the parts this run has
    box.append(...[el("h2", { text: r.name }), el("p", { text: r.description }),
      r.note ? el("p", { class: "dim", text: r.note }) : null,
      r.report_url ? el("p", {}, el("a", { href: r.report_url, target: "_blank", text: "Open the full report" })) : null,
      r.suite_url ? el("p", {}, `Part of the suite ${r.suite}: `,
                       el("a", { href: r.suite_url, target: "_blank", id: "suite-link", text: "open the suite's report" })) : null,
      r.not_drawn ? el("p", { class: "dim", id: "not-drawn", text: r.not_drawn }) : null,
      el("h3", { text: "Findings" }), el("ul", {}, ...r.findings.map(t => el("li", { text: t })))].filter(Boolean));
    for (const t of r.tables) {
      box.append(el("h3", { text: t.title }), dataTable(t.header, t.rows));
    }
    if (!r.figures.length) {
      box.append(el("p", { class: "dim", text: "No figures yet: build the report to draw them from the store." }),
                 el("button", { type: "button", id: "build-report", onclick: e => { e.target.disabled = true; e.target.textContent = "Building…"; showRun(path, true, box, main); } }, "Build report"));
    }
    for (const f of r.figures) {
      box.append(el("figure", {}, el("img", { src: f.png, alt: f.caption, loading: "lazy" }),
        el("figcaption", {}, f.caption + " ", el("a", { href: f.svg, target: "_blank", text: "SVG" }))));
    }
    return r;
  } catch (e) { showError(e); }
}

// ---------------------------------------------------------------------------------------- start

function route() {
  const { view } = readHash();
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${view}`;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === view);
  showError(null);
  if (view === "activations") renderActivations();
  else if (view === "live") renderLive();
  else if (view === "runs") renderRuns();
}

async function main() {
  try {
    const [health, catalog, datasets, presets] = await Promise.all([api("/api/health"), api("/api/activations"),
                                                                   api("/api/datasets"), api("/api/live/presets")]);
    $("#version").textContent = `actlab ${health.version}`;
    actlab.catalog = catalog;
    actlab.datasets = datasets;
    actlab.presets = presets;
    buildArmRows();
    buildFeatures();
    applyModel();
    liveForm().elements.model.addEventListener("change", () => {
      const f = liveForm(), gan = f.elements.model.value === "gan";
      // each model's working defaults (the gan-modes study's, smaller): Adam with β₁ = 0.5 for a GAN
      const sets = gan ? { batch_size: 256, epochs: 100, widths: "64,64", seeds: 4 }
                       : { batch_size: 32, epochs: 300, widths: "8,8", seeds: 4 };
      for (const [k, v] of Object.entries(sets)) f.elements[k].value = v;
      if (gan) { f.elements.arm0.value = "relu"; f.elements.arm1.value = "leaky_relu"; }
      applyModel();
      applyPreset();
      buildLayers();
    });
    liveForm().elements.dataset.addEventListener("change", () => applyPreset());
  } catch (e) { showError(e); return; }
  $("#act-lo").addEventListener("change", onActChange);
  $("#act-hi").addEventListener("change", onActChange);
  liveForm().addEventListener("change", onLiveForm);
  $("#layer-add").addEventListener("click", () => { const w = widthsOf(); if (w.length < MAX_LAYERS) setWidths([...w, w.at(-1) || 4]); });
  $("#layer-remove").addEventListener("click", () => { const w = widthsOf(); if (w.length > 1) setWidths(w.slice(0, -1)); });
  $("#live-start").addEventListener("click", startLive);
  $("#live-pause").addEventListener("click", togglePause);
  $("#live-reset").addEventListener("click", resetLive);
  $("#live-step").addEventListener("click", stepLive);
  $("#live-show").addEventListener("change", () => { if (actlab.live && actlab.live.surface) schedule(actlab.live, "surface"); });
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", () => { if (actlab.live && actlab.live.source) actlab.live.source.close(); });
  route();
}

main();
