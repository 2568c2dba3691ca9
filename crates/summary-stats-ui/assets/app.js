// Rivulet dashboard: follows /api/v1/summary/stream (Server-Sent Events: each changed month is
// pushed as the service indexes it) and draws the months; falls back to polling
// /api/v1/status and /api/v1/summary when the stream fails (?live=poll polls from the start).
// No libraries.
"use strict";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const params = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(250, Number(params.get("refresh_ms")) || 3000);
const STREAM_RETRY_MS = 30000;
const $ = (id) => document.getElementById(id);
let refreshes = 0;
let pushes = 0;
let timer = null;
let stream = null;
let failures = 0;
let mode = params.get("live") === "poll" || !window.EventSource ? "poll" : "stream";
const months = new Map();
let drawPending = false;

function fmt(v) { return v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US"); }
function cell(row, v, cls) {
  const td = row.insertCell();
  td.textContent = typeof v === "string" ? v : fmt(v);
  if (v === null || v === undefined) td.className = "null";
  if (cls) td.classList.add(cls);
  return td;
}
function monthLabel(m) { return `${m.year}-${String(m.month).padStart(2, "0")}`; }

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function fillSelect(select, values, wanted) {
  const current = select.value || wanted || "";
  const have = Array.from(select.options).map((o) => o.value);
  for (const v of values.map(String)) {
    if (!have.includes(v)) select.add(new Option(v, v));
  }
  if (Array.from(select.options).some((o) => o.value === current)) select.value = current;
}

function showStatus(status) {
  const s = status.served_by;
  $("served-by").textContent = `${s.app} ${s.version} · schema ${s.schema_version}`;
  const f = status.freshness;
  const when = f.last_update ? new Date(f.last_update).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "never";
  $("freshness").textContent =
    `Last update ${when} · lag ${f.lag === null ? "unknown" : fmt(f.lag)} · ${f.caught_up ? "caught up" : "catching up"}`;
  $("freshness").classList.toggle("stale", !f.caught_up || (f.lag || 0) > 0);
}

// The status line and the filters' choices; `pickYear` selects the latest year when none was
// chosen (at load, and on every poll).
function applyStatus(status, pickYear) {
  showStatus(status);
  fillSelect($("year"), status.years, params.get("year"));
  if (pickYear && !$("year").value && !params.has("year") && status.years.length) {
    $("year").value = String(status.years[status.years.length - 1]);
  }
  fillSelect($("sku"), status.skus, params.get("sku"));
}

function chart(title, metric, months, skus) {
  const W = 480, H = 220, L = 56, R = 16, T = 8, B = 28;
  const series = skus.map((sku) => months.map((m) => {
    const s = m.manufacturing.find((x) => x.sku === sku);
    return s ? s.totals[metric] : null;
  }));
  const values = series.flat().filter((v) => v !== null && v !== undefined);
  if (values.length === 0) return null;
  const max = Math.max(...values, 1);
  const x = (i) => L + (months.length < 2 ? 0 : (i * (W - L - R)) / (months.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const ns = "http://www.w3.org/2000/svg";
  const fig = document.createElement("figure");
  fig.dataset.metric = metric;
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  fig.append(cap);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const line = (x1, y1, x2, y2) => {
    const l = document.createElementNS(ns, "line");
    Object.entries({ x1, y1, x2, y2, class: "axis" }).forEach(([k, v]) => l.setAttribute(k, v));
    svg.append(l);
  };
  const text = (tx, ty, content, anchor) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", tx); t.setAttribute("y", ty); t.setAttribute("text-anchor", anchor);
    t.textContent = content;
    svg.append(t);
  };
  line(L, T, L, H - B); line(L, H - B, W - R, H - B);
  text(L - 4, T + 8, fmt(max), "end"); text(L - 4, H - B, "0", "end");
  const oneYear = months.every((m) => m.year === months[0].year);
  const NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const step = Math.max(1, Math.ceil(months.length / (oneYear ? 12 : 8)));
  months.forEach((m, i) => {
    if (i % step === 0) text(x(i), H - B + 14, oneYear ? NAMES[m.month - 1] : monthLabel(m), "middle");
  });
  series.forEach((points, k) => {
    const p = document.createElementNS(ns, "polyline");
    p.setAttribute("points", points.map((v, i) => (v === null || v === undefined ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean).join(" "));
    p.setAttribute("stroke", COLOURS[k % COLOURS.length]);
    p.dataset.sku = skus[k];
    p.dataset.values = points.map((v) => (v === null || v === undefined ? "" : v)).join(",");
    svg.append(p);
  });
  fig.append(svg);
  const legend = document.createElement("div");
  legend.className = "legend";
  skus.forEach((sku, k) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLOURS[k % COLOURS.length];
    span.append(swatch, sku);
    legend.append(span);
  });
  fig.append(legend);
  return fig;
}

function render(summary) {
  const months = summary.data;
  const skus = [...new Set(months.flatMap((m) => m.manufacturing.map((s) => s.sku)))].sort();
  const charts = $("charts");
  charts.replaceChildren();
  const wanted = [["Manufactured", "manufactured_qty"], ["Defects", "defect_qty"], ["Production cost", "production_cost"]];
  for (const [title, metric] of wanted) {
    if (months.length && !(metric in months[0].manufacturing[0].totals)) continue;
    const fig = chart(title, metric, months, skus);
    if (fig) charts.append(fig);
  }
  const monthBody = $("months").tBodies[0];
  monthBody.replaceChildren();
  for (const m of months) {
    const row = monthBody.insertRow();
    row.dataset.month = monthLabel(m);
    cell(row, monthLabel(m));
    cell(row, m.base_cost);
    cell(row, m.total_manufacturing_cost);
    cell(row, m.complete === undefined ? null : (m.complete ? "yes" : "no"));
  }
  const skuBody = $("skus").tBodies[0];
  skuBody.replaceChildren();
  for (const m of months) {
    for (const s of m.manufacturing) {
      const row = skuBody.insertRow();
      row.dataset.month = monthLabel(m);
      row.dataset.sku = s.sku;
      cell(row, monthLabel(m));
      cell(row, s.sku, "sku");
      cell(row, s.totals.manufactured_qty).dataset.field = "manufactured_qty";
      cell(row, s.totals.defect_qty).dataset.field = "defect_qty";
      cell(row, s.totals.production_cost).dataset.field = "production_cost";
      cell(row, s.coverage.records).dataset.field = "records";
    }
  }
}

async function refresh() {
  try {
    applyStatus(await getJson("/api/v1/status"), true);
    const q = new URLSearchParams();
    if ($("year").value) q.set("year", $("year").value);
    if ($("sku").value) q.set("sku", $("sku").value);
    render(await getJson(`/api/v1/summary?${q}`));
    $("error").hidden = true;
  } catch (e) {
    $("error").textContent = `Could not refresh: ${e.message}`;
    $("error").hidden = false;
  }
  refreshes += 1;
  document.body.dataset.refreshes = String(refreshes);
}

function schedule() {
  clearInterval(timer);
  if ($("live").checked && mode === "poll") timer = setInterval(refresh, REFRESH_MS);
}

function setMode(m) {
  mode = m;
  document.body.dataset.live = m;
}

// ---- Pushed updates ----------------------------------------------------------------------

function monthKey(m) { return `${m.year}-${m.month}`; }

function draw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    const data = [...months.values()].sort((a, b) => a.year - b.year || a.month - b.month);
    render({ data });
  });
}

function connect() {
  if (stream) stream.close();
  stream = null;
  if (!$("live").checked) return;
  const q = new URLSearchParams();
  if ($("year").value) q.set("year", $("year").value);
  if ($("sku").value) q.set("sku", $("sku").value);
  const source = new EventSource(`/api/v1/summary/stream?${q}`);
  stream = source;
  source.addEventListener("open", () => { failures = 0; setMode("stream"); clearInterval(timer); });
  source.addEventListener("reset", () => { months.clear(); draw(); });
  source.addEventListener("month", (e) => { const m = JSON.parse(e.data); months.set(monthKey(m), m); draw(); });
  source.addEventListener("removed", (e) => { months.delete(monthKey(JSON.parse(e.data))); draw(); });
  source.addEventListener("status", (e) => {
    applyStatus(JSON.parse(e.data), false);
    $("error").hidden = true;
    pushes += 1;
    document.body.dataset.pushes = String(pushes);
  });
  source.addEventListener("error", () => {
    // The browser retries by itself (sending Last-Event-ID) unless the answer was an error
    // status; a refused or repeatedly failing stream falls back to polling, and the stream is
    // tried again later.
    failures += 1;
    if (source.readyState === EventSource.CLOSED || failures >= 3) {
      source.close();
      if (stream === source) stream = null;
      setMode("poll");
      $("error").textContent = "Live updates are unavailable; refreshing every few seconds instead.";
      $("error").hidden = false;
      refresh().then(schedule);
      setTimeout(() => { if (mode === "poll" && !stream) connect(); }, STREAM_RETRY_MS);
    }
  });
}

function changed() {
  if (mode === "stream") connect(); else refresh();
}

async function start() {
  // One status read picks the default year (the latest); after that the stream carries it.
  if (mode === "stream") {
    try {
      applyStatus(await getJson("/api/v1/status"), true);
    } catch (e) {
      $("error").textContent = `Could not read the status: ${e.message}`;
      $("error").hidden = false;
    }
    setMode("stream");
    connect();
  } else {
    setMode("poll");
    await refresh();
    schedule();
  }
}

$("year").addEventListener("change", changed);
$("sku").addEventListener("change", changed);
$("live").addEventListener("change", () => { if (mode === "stream") connect(); else schedule(); });
start();
