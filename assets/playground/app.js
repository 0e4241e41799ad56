// The playground page: scenario and knobs, a run in worker.js, then the
// summary table, charts (inline SVG drawn here from the CSV text) and the
// CSV text itself. Query string: ?scenario=NAME&set=PATH%3DVALUE&autorun=1
// (set may repeat). document.body.dataset.state is loading, ready,
// running, done or error.
"use strict";
const D = self.QOSSIM;
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let worker = null;

// qossim.wasm's bytes, decoded once from qossim-wasm.js (a page opened
// from disk may not fetch files); later jobs reuse the worker's instance.
let wasmSent = false;
function wasmBytes() {
  if (wasmSent) return null;
  wasmSent = true;
  const b64 = self.QOSSIM_WASM_B64;
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}
let controls = []; // {knob, el}
let timer = null;

function setState(s) { document.body.dataset.state = s; }

function showError(msg) {
  $("error").hidden = !msg;
  $("error").textContent = msg || "";
}

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// CSV with optional "quoted, fields" → array of objects by header.
function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') q = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; }
    else if (c !== "\r") cell += c;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  const head = rows.shift() || [];
  return rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i] === undefined ? "" : r[i]])));
}

const num = (s) => (s === "" || s === undefined ? NaN : Number(s));

function scenarioByName(name) { return D.scenarios.find((s) => s.name === name); }

function question(toml) {
  const lines = [];
  for (const l of toml.split("\n")) {
    if (!l.startsWith("#")) break;
    lines.push(l.replace(/^#\s?/, ""));
  }
  const text = lines.join(" ").trim();
  const m = text.match(/"([^"]+)"/);
  return m ? m[1] : text.split(/(?<=[.?])\s/)[0];
}

// Reliability values that go with a protocol (kept in step with the
// protocol select of the same flow).
const RELIABILITY = { mqtt: ["qos0", "qos1", "qos2"], mqttsn: ["qos0", "qos1", "qos2"], coap: ["con", "non"] };
const ACROSS = { qos0: "non", qos1: "con", qos2: "con", con: "qos1", non: "qos0" };

function fillOptions(select, options, value) {
  select.replaceChildren(...options.map((o) => el("option", { value: o }, o)));
  select.value = options.includes(value) ? value : options[0];
}

function buildKnobs(sc) {
  const box = $("knobs");
  box.replaceChildren();
  controls = [];
  for (const knob of sc.knobs) {
    const id = "knob-" + controls.length;
    box.append(el("label", { for: id }, knob.label));
    let input;
    if (knob.kind === "select") {
      input = el("select", { id, "data-path": knob.path });
      fillOptions(input, knob.options.map(String), String(knob.value));
      box.append(input);
    } else if (knob.step < 1) {
      input = el("input", { id, type: "range", min: knob.min, max: knob.max, step: knob.step, "data-path": knob.path });
      input.value = String(knob.value);
      const out = el("output", { for: id }, input.value);
      input.addEventListener("input", () => { out.textContent = input.value; });
      box.append(input, out);
    } else {
      input = el("input", { id, type: "number", min: knob.min, step: knob.step, "data-path": knob.path });
      input.value = String(knob.value);
      box.append(input);
    }
    controls.push({ knob, el: input, initial: input.value });
  }
  // A flow's reliability follows its protocol.
  for (const c of controls) {
    if (!c.knob.follows) continue;
    const p = controls.find((o) => o.knob.path === c.knob.follows);
    if (!p) continue;
    p.el.addEventListener("change", () => {
      const want = ACROSS[c.el.value] && !RELIABILITY[p.el.value].includes(c.el.value) ? ACROSS[c.el.value] : c.el.value;
      fillOptions(c.el, RELIABILITY[p.el.value] || [], want);
    });
  }
}

function selectScenario(name) {
  const sc = scenarioByName(name) || D.scenarios[0];
  $("scenario").value = sc.name;
  $("question").textContent = question(sc.toml);
  $("toml").textContent = sc.toml;
  buildKnobs(sc);
  return sc;
}

// The --set overrides: every knob moved from the file's value, then the
// free-form lines.
function overrides() {
  const out = [];
  for (const c of controls) {
    if (c.el.value !== c.initial) out.push(`${c.knob.path}=${c.el.value}`);
  }
  for (const l of $("extra").value.split("\n")) {
    if (l.trim()) out.push(l.trim());
  }
  return out;
}

function shellQuote(s) { return /^[A-Za-z0-9_.,:=\/+-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }

function cliLine(name, sets) {
  return ["qossim run", `scenarios/teaching/${name}.toml`, ...sets.map((s) => "--set " + shellQuote(s))].join(" ");
}

function run() {
  const sc = scenarioByName($("scenario").value);
  const sets = overrides();
  showError("");
  $("cli").textContent = cliLine(sc.name, sets);
  $("run").disabled = true;
  setState("running");
  const t0 = performance.now();
  const tick = () => { $("status").textContent = `running… ${((performance.now() - t0) / 1000).toFixed(1)} s`; };
  tick();
  timer = setInterval(tick, 200);
  worker.onmessage = (e) => finish(e.data, sc, (performance.now() - t0) / 1000);
  worker.postMessage({ wasm: wasmBytes(), toml: sc.toml, overrides: sets.join("\n"), maxEvents: D.max_events });
}

function finish(res, sc, secs) {
  clearInterval(timer);
  $("run").disabled = false;
  if (!res.ok) {
    $("status").textContent = `failed after ${secs.toFixed(1)} s`;
    const err = res.error || "the run failed";
    // The wasm stops a run at the event limit; say what that means here.
    showError(err.includes(`more than ${D.max_events} events`)
      ? `Too large for the browser: ${err}. The command line has no such limit: qossim run scenarios/teaching/${sc.name}.toml with the same --set lines.`
      : err);
    for (const id of ["summary", "charts"]) $(id).replaceChildren();
    for (const id of ["runs-csv", "summary-csv"]) $(id).textContent = "";
    setState("error");
    return;
  }
  const f = res.files || {};
  $("status").textContent = `done: ${res.events} events in ${secs.toFixed(1)} s`;
  $("runs-csv").textContent = f["runs.csv"] || "";
  $("summary-csv").textContent = f["summary.csv"] || "";
  const summary = parseCsv(f["summary.csv"] || "");
  summaryTable(summary);
  charts(summary, parseCsv(f["timeseries.csv"] || ""), parseCsv(f["events.csv"] || ""));
  setState("done");
}

const fmt = (v) => (Number.isNaN(v) ? "–" : Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));

function summaryTable(rows) {
  const cols = [["flow", "flow"], ["protocol", "protocol"], ["reliability", "reliability"], ["sent", "sent"],
    ["delivered", "delivered"], ["duplicates", "duplicates"], ["delivery_ratio", "delivery ratio"],
    ["latency_ms_p50", "latency p50 (ms)"], ["latency_ms_p99", "latency p99 (ms)"],
    ["bytes_on_wire_per_delivered", "bytes per delivered"], ["retransmissions", "retransmissions"]];
  const t = el("table", { id: "summary-table" });
  const hr = el("tr");
  for (const [, h] of cols) hr.append(el("th", {}, h));
  t.append(hr);
  for (const r of rows) {
    const tr = el("tr");
    for (const [k] of cols) {
      const v = num(r[k]);
      tr.append(el("td", {}, Number.isNaN(v) || ["flow", "protocol", "reliability"].includes(k) ? (r[k] || "–") : fmt(v)));
    }
    t.append(tr);
  }
  $("summary").replaceChildren(t);
}

function figure(caption, svg) {
  const f = el("figure");
  f.append(svg, el("figcaption", {}, caption));
  $("charts").append(f);
}

function legend(svg, names, x, y) {
  names.forEach((n, i) => {
    svg.append(el("svg:rect", { x: x + i * 130, y: y - 9, width: 10, height: 10, fill: COLORS[i % COLORS.length] }));
    svg.append(el("svg:text", { x: x + i * 130 + 14, y }, n));
  });
}

// Grouped bars: one group per category, one bar per series.
function bars(categories, series, yLabel) {
  const W = 720, H = 260, L = 60, B = 40, T = 24;
  const max = Math.max(1e-9, ...series.flatMap((s) => s.values.filter((v) => !Number.isNaN(v))));
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" });
  axes(svg, W, H, L, B, T, max, yLabel);
  const gw = (W - L - 10) / Math.max(1, categories.length);
  const bw = (gw * 0.8) / Math.max(1, series.length);
  categories.forEach((c, i) => {
    series.forEach((s, j) => {
      const v = s.values[i];
      if (Number.isNaN(v)) return;
      const h = ((H - B - T) * v) / max;
      const r = el("svg:rect", { x: L + i * gw + gw * 0.1 + j * bw, y: H - B - h, width: bw - 1, height: h, fill: COLORS[j % COLORS.length] });
      r.append(el("svg:title", {}, `${c} ${s.name}: ${fmt(v)}`));
      svg.append(r);
    });
    svg.append(el("svg:text", { x: L + i * gw + gw / 2, y: H - B + 14, "text-anchor": "middle" }, c));
  });
  legend(svg, series.map((s) => s.name), L, 14);
  return svg;
}

function axes(svg, W, H, L, B, T, max, yLabel, xMax, xLabel) {
  svg.append(el("svg:line", { x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: "#444" }));
  svg.append(el("svg:line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#444" }));
  for (let k = 0; k <= 4; k++) {
    const y = H - B - ((H - B - T) * k) / 4;
    svg.append(el("svg:line", { x1: L - 4, y1: y, x2: W - 10, y2: y, stroke: "#ddd" }));
    svg.append(el("svg:text", { x: L - 6, y: y + 4, "text-anchor": "end" }, fmt((max * k) / 4)));
  }
  svg.append(el("svg:text", { x: 12, y: (H - B + T) / 2, transform: `rotate(-90 12 ${(H - B + T) / 2})`, "text-anchor": "middle" }, yLabel));
  if (xMax !== undefined) {
    for (let k = 0; k <= 5; k++) {
      const x = L + ((W - 10 - L) * k) / 5;
      svg.append(el("svg:text", { x, y: H - B + 14, "text-anchor": "middle" }, fmt((xMax * k) / 5)));
    }
    svg.append(el("svg:text", { x: (W + L) / 2, y: H - 6, "text-anchor": "middle" }, xLabel));
  }
}

// One line per flow over time, with a dashed marker at each event.
function lines(ts, flows, key, yLabel, events) {
  const W = 720, H = 260, L = 60, B = 40, T = 24;
  const pts = ts.filter((r) => !Number.isNaN(num(r[key])));
  const xMax = Math.max(1, ...ts.map((r) => num(r.t_ms) / 1000));
  const max = Math.max(1e-9, ...pts.map((r) => num(r[key])));
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" });
  axes(svg, W, H, L, B, T, max, yLabel, xMax, "simulated time (s)");
  const X = (s) => L + ((W - 10 - L) * s) / xMax;
  const Y = (v) => H - B - ((H - B - T) * v) / max;
  for (const ev of events) {
    const x = X(num(ev.t_ms) / 1000);
    const m = el("svg:line", { x1: x, y1: T, x2: x, y2: H - B, stroke: "#888", "stroke-dasharray": "4 3" });
    m.append(el("svg:title", {}, `${fmt(num(ev.t_ms) / 1000)} s: ${ev.action} ${ev.target}`));
    svg.append(m);
  }
  flows.forEach((f, i) => {
    const d = pts.filter((r) => r.flow === f).map((r, k) => `${k ? "L" : "M"}${X(num(r.t_ms) / 1000).toFixed(1)},${Y(num(r[key])).toFixed(1)}`).join("");
    if (d) svg.append(el("svg:path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.5 }));
  });
  legend(svg, flows, L, 14);
  return svg;
}

function charts(summary, ts, events) {
  $("charts").replaceChildren();
  if (!summary.length) return;
  const flows = summary.map((r) => r.flow);
  const col = (k) => summary.map((r) => num(r[k]));
  figure("Delivery ratio per flow (delivered ÷ intended).", bars(flows, [{ name: "delivery ratio", values: col("delivery_ratio") }], "delivery ratio"));
  figure("Latency per flow: median and 99th percentile.", bars(flows, [{ name: "p50", values: col("latency_ms_p50") }, { name: "p99", values: col("latency_ms_p99") }], "latency (ms)"));
  const layers = ["payload", "protocol", "security", "transport_ip", "adaptation", "link"];
  const per = layers
    .map((l) => ({ name: l, values: summary.map((r) => num(r["bytes_" + l]) / num(r.delivered)) }))
    .filter((s) => s.values.some((v) => v > 0));
  figure("Bytes on the wire per delivered message, by layer (retransmissions included).", bars(flows, per, "bytes per delivered"));
  const ev = events.filter((e) => e.t_ms !== undefined);
  figure("Delivery ratio over time, per flow; dashed lines are the scenario's events.", lines(ts, flows, "delivery_ratio", "delivery ratio", ev));
  figure("Latency p99 over time, per flow; dashed lines are the scenario's events.", lines(ts, flows, "latency_ms_p99", "latency p99 (ms)", ev));
}

function start() {
  const q = new URLSearchParams(location.search);
  const sel = $("scenario");
  for (const s of D.scenarios) sel.append(el("option", { value: s.name }, s.name));
  sel.addEventListener("change", () => selectScenario(sel.value));
  const name = q.get("scenario");
  if (name && !scenarioByName(name)) showError(`no teaching scenario named ${name}`);
  selectScenario(name || "qos-levels");
  // ?set=PATH=VALUE moves the knob of that path when the control can show
  // the value exactly; otherwise it becomes a free-form override line.
  const extra = [];
  for (const s of q.getAll("set")) {
    const i = s.indexOf("=");
    const c = i > 0 && controls.find((o) => o.knob.path === s.slice(0, i));
    if (c) {
      c.el.value = s.slice(i + 1);
      c.el.dispatchEvent(new Event("input"));
      c.el.dispatchEvent(new Event("change"));
      if (c.el.value === s.slice(i + 1)) continue;
      c.el.value = c.initial;
    }
    extra.push(s);
  }
  $("extra").value = extra.join("\n");
  try {
    // from a Blob of its source, so a page opened from disk may start it
    const src = new Blob([self.QOSSIM_WORKER_SRC], { type: "text/javascript" });
    worker = new Worker(URL.createObjectURL(src));
  } catch (err) {
    showError(`cannot start the Web Worker (${err.message}); serve this directory over HTTP, e.g. python3 -m http.server`);
    setState("error");
    return;
  }
  worker.onerror = (e) => {
    clearInterval(timer);
    showError(`the worker failed: ${e.message || "unknown error"}`);
    setState("error");
  };
  $("run").addEventListener("click", run);
  $("run").disabled = false;
  $("status").textContent = "ready";
  setState("ready");
  if (q.get("autorun") === "1") run();
}

start();
