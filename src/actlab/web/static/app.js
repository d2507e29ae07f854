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
    axes: [{ label: xLabel }, { label: yLabel, size: 60 }],
    legend: { live: false },
  }, data, container);
}

function fmt(v, digits = 4) { return v == null ? "—" : Number(v).toPrecision(digits); }

// ---------------------------------------------------------------------------------- activations

function selectedActs(params) { return (params.get("acts") || "relu,gelu").split(",").filter(Boolean); }

function renderActivations() {
  const { params } = readHash();
  const chosen = selectedActs(params);
  $("#act-lo").value = params.get("lo") || "-5";
  $("#act-hi").value = params.get("hi") || "5";
  const list = $("#act-list");
  list.innerHTML = "";
  for (const a of actlab.catalog.filter(a => !a.vector)) {
    const box = el("input", { type: "checkbox", value: a.name, onchange: onActChange });
    box.checked = chosen.includes(a.name);
    list.append(el("label", { title: a.description }, box, " " + a.name));
  }
  const holder = $("#act-params");
  holder.innerHTML = "";
  for (const name of chosen) {
    const a = actlab.catalog.find(c => c.name === name);
    if (!a) continue;
    for (const p of a.params) {
      // a slider over the parameter's allowed range (open ends get a finite span around the default), with
      // a number box beside it for exact values; both write the same URL parameter
      const key = `${name}.${p.name}`;
      const hi = p.high ?? Math.max(5, 5 * Math.abs(p.default) || 5), lo = p.low ?? -hi;
      const value = params.get(key) ?? p.default;
      const step = Number(((hi - lo) / 200).toPrecision(1));
      const input = el("input", { type: "number", step: "any", min: lo, max: hi, name: key, value,
                                  "aria-label": `${name} ${p.name}`, onchange: onActChange });
      const slider = el("input", { type: "range", min: lo, max: hi, step, value, "aria-label": `${name} ${p.name} slider`,
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
  const acts = selectedActs(params).slice(0, 6);
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
    const series = [], data = [res.x];
    res.curves.forEach((c) => {  // each activation in its palette colour (as in the report): φ solid, φ′ dashed
      series.push({ label: c.label, stroke: c.color || BLUE, width: 2 });
      series.push({ label: c.label + "′", stroke: c.color || RED, width: 1.5, dash: [6, 4] });
      data.push(c.y, c.dy);
    });
    actlab.plots = { ...(actlab.plots || {}), act: plot($("#act-plot"), series, data, { xLabel: "x", yLabel: "φ (solid), φ′ (dashed)", height: 340 }) };
    renderProps(res.curves);
    drawTheory(items[0]);
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
  plot(chi, [{ label: "χ₁", stroke: BLUE, width: 2 }, { label: "χ₁ = 1 (edge of chaos)", stroke: "#888", dash: [4, 4] }],
       [t.chi.sw2, t.chi.chi1, ones], { xLabel: "σ_w²", yLabel: "χ₁", height: 240 });
  plot(qm, [{ label: "V(q)", stroke: BLUE, width: 2 }, { label: "q", stroke: "#888", dash: [4, 4] }],
       [t.q_map.q, t.q_map.v, t.q_map.q], { xLabel: "q (layer l)", yLabel: "q (layer l + 1)", height: 240 });
  if (t.c_map) plot(cm, [{ label: "C(c)", stroke: BLUE, width: 2 }, { label: "c", stroke: "#888", dash: [4, 4] }],
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

async function drawGuide() {
  const body = $("#act-guide-body");
  if (body.childElementCount) return;  // static text: drawn once
  let g;
  try { g = actlab.guide = await api("/api/activations/guide"); } catch (err) { showError(err); return; }
  const table = t => el("table", {}, el("thead", {}, el("tr", {}, ...t.header.map(h => el("th", { text: h })))),
    el("tbody", {}, ...t.rows.map(r => el("tr", {}, ...r.map(v => el("td", { text: v }))))));
  body.append(el("p", { class: "dim", text: `From ${g.source}.` }),
    el("h3", { text: "By architecture" }), table(g.architectures),
    el("h3", { text: "Output layer by task" }), table(g.outputs),
    el("h3", { text: "Decision flowchart (the first yes decides)" }),
    el("ol", {}, ...g.flowchart.map(s => el("li", { text: `${s.question} → ${s.then}` }))),
    el("h3", { text: "Rule of thumb" }), el("ul", {}, ...g.rules.map(r => el("li", { text: r }))));
}

function renderProps(curves) {
  const box = $("#act-props");
  box.innerHTML = "";
  const grid = el("div", { class: "props" });
  for (const c of curves) {
    const rows = Object.entries(c.table).map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v })));
    const g = c.guidance;
    grid.append(el("div", { class: "card" },
      el("h3", { text: c.label }),
      el("table", {}, el("tbody", {}, ...rows)),
      el("strong", { text: "When to use" }),
      el("p", { text: g.note || "A user activation: no guideline; see the measured cautions." }),
      g.output_for.length ? el("p", { text: `Output layer for ${g.output_for.join(", ")} tasks.` }) : null,
      el("ul", {}, ...g.cautions.map(t => el("li", { text: t })))));
  }
  box.append(grid);
}

// ------------------------------------------------------------------------------- live training

const LIVE_FIELDS = ["dataset", "noise", "points", "activation", "depth", "width", "init", "optimizer", "lr",
                     "batch_size", "epochs", "seeds"];
const NUMERIC = new Set(["noise", "points", "depth", "width", "lr", "batch_size", "epochs", "seeds"]);
let source = null;

function liveForm() { return $("#live-form"); }

function renderLive() {
  const { params } = readHash();
  const form = liveForm();
  for (const f of LIVE_FIELDS) if (params.has(f)) form.elements[f].value = params.get(f);
}

function liveRequest() {
  const form = liveForm(), body = {}, params = new URLSearchParams();
  for (const f of LIVE_FIELDS) {
    const v = form.elements[f].value;
    body[f] = NUMERIC.has(f) ? Number(v) : v;
    params.set(f, v);
  }
  writeHash("live", params);
  return body;
}

function resetLive() {
  if (source) { source.close(); source = null; }
  if (actlab.live && actlab.live.id && !actlab.live.finished) fetch(`/api/live/${actlab.live.id}`, { method: "DELETE", headers: headers(actlab.live.token) });
  actlab.live = null;
  for (const id of ["#live-loss", "#live-grad", "#live-dead"]) $(id).innerHTML = "";
  const c = $("#live-surface");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
  $("#live-pause").disabled = true;
  $("#live-pause").textContent = "Pause";
  $("#live-start").disabled = false;
  $("#live-status").textContent = "Ready.";
}

async function startLive() {
  resetLive();
  const body = liveRequest();
  try {
    const s = await api("/api/live", { method: "POST", body: JSON.stringify(body) });
    showError(null);
    const st = actlab.live = { id: s.id, token: s.token, request: s.request, epochs: [], loss: [], meanLoss: [], testAcc: [],
                               probes: [], finished: false, paused: false };
    $("#live-start").disabled = true;
    $("#live-pause").disabled = false;
    source = new EventSource(`/api/live/${s.id}/events?token=${encodeURIComponent(s.token)}`);
    source.addEventListener("start", e => { st.data = JSON.parse(e.data); st.loss = st.data.seeds.map(() => []); });
    source.addEventListener("epoch", e => onEpoch(st, JSON.parse(e.data)));
    source.addEventListener("surface", e => drawSurface(st, JSON.parse(e.data)));
    source.addEventListener("probe", e => onProbe(st, JSON.parse(e.data)));
    source.addEventListener("done", e => finishLive(st, JSON.parse(e.data)));
    source.addEventListener("stopped", () => finishLive(st, null));
    source.addEventListener("error", e => {
      if (e.data) { showError(JSON.parse(e.data).detail); finishLive(st, null); }
      else if (!st.finished) { $("#live-status").textContent = "Connection lost."; finishLive(st, null); }
    });
  } catch (e) { showError(e); }
}

function onEpoch(st, d) {
  st.epochs.push(...d.epochs);
  d.loss.forEach((row, s) => st.loss[s].push(...row));
  for (let j = 0; j < d.epochs.length; j++) {
    const vals = d.loss.map(r => r[j]).filter(v => v != null);
    st.meanLoss.push(vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null);
    const acc = d.test_acc.map(r => r[j]).filter(v => v != null);
    st.testAcc.push(acc.length ? acc.reduce((a, b) => a + b, 0) / acc.length : null);
  }
  const series = [...st.loss.map((_, s) => ({ label: `seed ${s}`, stroke: SEED_COLORS[s % 16] + "88", width: 1 })),
                  { label: "mean", stroke: "#111", width: 2.2 }];
  const data = [st.epochs, ...st.loss, st.meanLoss];
  if (!st.lossPlot || st.lossPlot.series.length !== series.length + 1)
    st.lossPlot = plot($("#live-loss"), series, data, { xLabel: "epoch", yLabel: "loss", logY: true });
  else st.lossPlot.setData(data);
  const last = st.epochs.length - 1;
  $("#live-status").textContent = `epoch ${st.epochs[last]} of ${st.request.epochs} · mean training loss ` +
    `${fmt(st.meanLoss[last])} · mean test accuracy ${fmt(st.testAcc[last], 3)} (n = ${st.loss.length} seeds)`;
}

function drawSurface(st, d) {
  st.surface = d;
  const c = $("#live-surface"), ctx = c.getContext("2d");
  const nx = d.gx.length, ny = d.gy.length;
  const img = ctx.createImageData(nx, ny);
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    const p = d.mean[j][i] ?? 0.5, k = 4 * ((ny - 1 - j) * nx + i);
    // blue (class 0) to white to red (class 1), as in the report
    img.data[k] = p < 0.5 ? 70 + 370 * p : 255;
    img.data[k + 1] = p < 0.5 ? 130 + 250 * p : 255 - 300 * (p - 0.5);
    img.data[k + 2] = p < 0.5 ? 255 : 255 - 380 * (p - 0.5);
    img.data[k + 3] = 200;
  }
  const off = document.createElement("canvas");
  off.width = nx; off.height = ny;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.drawImage(off, 0, 0, c.width, c.height);
  if (!st.data) return;
  const [x0, x1, y0, y1] = [d.gx[0], d.gx[nx - 1], d.gy[0], d.gy[ny - 1]];
  const draw = (pts, ys, hollow) => pts.forEach(([x, y], i) => {
    ctx.beginPath();
    ctx.arc((x - x0) / (x1 - x0) * c.width, (1 - (y - y0) / (y1 - y0)) * c.height, 3, 0, 2 * Math.PI);
    ctx.fillStyle = ctx.strokeStyle = ys[i] ? "#b3001b" : "#0b3d91";
    if (hollow) ctx.stroke(); else ctx.fill();
  });
  draw(st.data.train, st.data.train_y, false);
  draw(st.data.test, st.data.test_y, true);
}

function onProbe(st, d) {
  st.probes.push(d);
  const first = st.probes[0], x = d.layers.map((_, i) => i + 1);
  const g = [{ label: `epoch ${first.epoch}`, stroke: "#999", width: 1.5, dash: [6, 4] },
             { label: `epoch ${d.epoch}`, stroke: BLUE, width: 2 }];
  st.gradPlot = plot($("#live-grad"), g, [x, first.grad_norm, d.grad_norm], { xLabel: "layer (last = output)", yLabel: "‖∂L/∂W‖", logY: true, height: 240 });
  const hidden = d.hidden.map((n, i) => [n, i]).filter(([n]) => n !== "output").map(([, i]) => i);
  st.deadPlot = plot($("#live-dead"), [{ label: `epoch ${first.epoch}`, stroke: "#999", width: 1.5, dash: [6, 4] },
                                        { label: `epoch ${d.epoch}`, stroke: RED, width: 2 }],
                     [hidden.map(i => i + 1), hidden.map(i => first.dead_fraction[i]), hidden.map(i => d.dead_fraction[i])],
                     { xLabel: "hidden layer", yLabel: "dead fraction", height: 240, yRange: [0, 1] });
}

function finishLive(st, d) {
  st.finished = true;
  if (source) { source.close(); source = null; }
  $("#live-start").disabled = false;
  $("#live-pause").disabled = true;
  if (d) {
    st.result = d;
    $("#live-status").textContent = `done: ${d.epoch} epochs in ${d.wall_s} s · final test accuracy ` +
      `${fmt(d.test_acc, 3)} [${fmt(d.lo, 3)}, ${fmt(d.hi, 3)}] (95 % CI, n = ${d.n} seeds)` +
      (d.diverged ? ` · ${d.diverged} diverged` : "");
  } else if (!$("#error").hidden) $("#live-status").textContent = "Stopped with an error.";
  else $("#live-status").textContent = "Stopped.";
}

async function togglePause() {
  const st = actlab.live;
  if (!st || st.finished) return;
  const r = await api(`/api/live/${st.id}/${st.paused ? "resume" : "pause"}`, { method: "POST" }, st.token);
  st.paused = r.state === "paused";
  $("#live-pause").textContent = st.paused ? "Resume" : "Pause";
}

// ------------------------------------------------------------------------------------------ runs

async function renderRuns() {
  const { params } = readHash();
  try {
    const res = await api("/api/runs");
    $("#runs-root").textContent = res.root;
    const rows = res.runs.map(r => {
      const tr = el("tr", { "data-path": r.path, onclick: () => { writeHash("runs", new URLSearchParams({ run: r.path })); renderRuns(); } },
        el("td", { text: r.path }), el("td", { text: r.kind }),
        el("td", { text: Object.entries(r.cells).map(([k, v]) => `${v} ${k}`).join(", ") }));
      if (r.path === params.get("run")) tr.className = "sel";
      return tr;
    });
    const list = $("#runs-list");
    list.innerHTML = "";
    list.append(rows.length ? el("table", { class: "runs-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "run" }), el("th", { text: "kind" }), el("th", { text: "cells" }))),
      el("tbody", {}, ...rows)) : el("p", { class: "dim", text: "No runs yet: actlab run writes them here." }));
    if (params.get("run")) await showRun(params.get("run"));
  } catch (e) { showError(e); }
}

async function showRun(path, build = false) {
  const box = $("#run-detail");
  try {
    const r = actlab.run = await api(`/api/runs/${path}${build ? "/report" : ""}`, build ? { method: "POST" } : {});
    showError(null);
    box.innerHTML = "";
    // DOM append writes a null as the text "null": only the parts this run has
    box.append(...[el("h2", { text: r.name }), el("p", { text: r.description }),
      r.note ? el("p", { class: "dim", text: r.note }) : null,
      r.report_url ? el("p", {}, el("a", { href: r.report_url, target: "_blank", text: "Open the full report" })) : null,
      r.suite_url ? el("p", {}, `Part of the suite ${r.suite}: `,
                       el("a", { href: r.suite_url, target: "_blank", id: "suite-link", text: "open the suite's report" })) : null,
      r.not_drawn ? el("p", { class: "dim", id: "not-drawn", text: r.not_drawn }) : null,
      el("h3", { text: "Findings" }), el("ul", {}, ...r.findings.map(t => el("li", { text: t })))].filter(Boolean));
    for (const t of r.tables) {
      box.append(el("h3", { text: t.title }), el("table", {},
        el("thead", {}, el("tr", {}, ...t.header.map(h => el("th", { text: h })))),
        el("tbody", {}, ...t.rows.map(row => el("tr", {}, ...row.map(v => el("td", { text: v })))))));
    }
    if (!r.figures.length) {
      box.append(el("p", { class: "dim", text: "No figures yet: build the report to draw them from the store." }),
                 el("button", { type: "button", id: "build-report", onclick: e => { e.target.disabled = true; e.target.textContent = "Building…"; showRun(path, true); } }, "Build report"));
    }
    for (const f of r.figures) {
      box.append(el("figure", {}, el("img", { src: f.png, alt: f.caption, loading: "lazy" }),
        el("figcaption", {}, f.caption + " ", el("a", { href: f.svg, target: "_blank", text: "SVG" }))));
    }
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
    const [health, catalog, datasets] = await Promise.all([api("/api/health"), api("/api/activations"), api("/api/datasets")]);
    $("#version").textContent = `actlab ${health.version}`;
    actlab.catalog = catalog;
    const form = liveForm();
    for (const name of Object.keys(datasets)) form.elements.dataset.append(el("option", { value: name, text: name }));
    for (const a of catalog.filter(a => !a.vector)) form.elements.activation.append(el("option", { value: a.name, text: a.name }));
    form.elements.activation.value = "relu";
  } catch (e) { showError(e); return; }
  $("#act-lo").addEventListener("change", onActChange);
  $("#act-hi").addEventListener("change", onActChange);
  liveForm().addEventListener("change", liveRequest);
  $("#live-start").addEventListener("click", startLive);
  $("#live-pause").addEventListener("click", togglePause);
  $("#live-reset").addEventListener("click", resetLive);
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", () => { if (source) source.close(); });
  route();
}

main();
