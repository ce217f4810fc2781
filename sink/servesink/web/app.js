// The page of ssink --serve: reads /events (Server-Sent Events) and draws
// the latest batch as a table in the layout of Spark's console sink, and
// the charts the sink was given (--chart). No build step: plain JS and
// Chart.js, vendored.
"use strict";

const cellWidth = 20; // Spark's show() cuts cells at 20 characters
let config = null;    // {run, keep, charts}
let batches = [];     // the kept batches, oldest first
let charts = [];      // a Chart.js chart per config.charts entry
let seen = new Set(); // batch ids shown, against the copies of a reconnection
let lost = 0;         // batches the page missed (it read too slowly)

const $ = (id) => document.getElementById(id);

function status(text, cls) {
  $("status").textContent = text;
  $("status").className = cls || "";
}

function pad(n, w) { return String(n).padStart(w, "0"); }

// timeText is the batch time as the console header shows it.
function timeText(ms) {
  return new Date(ms).toISOString();
}

function shortTime(ms) {
  const d = new Date(ms);
  return pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" + pad(d.getUTCSeconds(), 2);
}

// cellText is a value's cell as show() prints it: NULL, strings as they
// are, others as JSON; cut at cellWidth with "...".
function cellText(v) {
  let s = v === null || v === undefined ? "NULL" : typeof v === "string" ? v : JSON.stringify(v);
  if ([...s].length > cellWidth) s = [...s].slice(0, cellWidth - 3).join("") + "...";
  return s;
}

function setup(cfg) {
  config = cfg;
  batches = [];
  seen = new Set();
  for (const c of charts) c.destroy();
  charts = [];
  const box = $("charts");
  box.replaceChildren();
  for (const spec of cfg.charts) {
    const div = document.createElement("div");
    div.className = "chart";
    const canvas = document.createElement("canvas");
    div.appendChild(canvas);
    box.appendChild(div);
    const line = spec.kind === "line";
    charts.push(new Chart(canvas, {
      type: line ? "line" : "bar",
      data: { labels: [], datasets: [{ label: spec.y, data: [], borderColor: "#1e88e5", backgroundColor: line ? "#1e88e5" : "#90caf9", spanGaps: true }] },
      options: {
        animation: false, maintainAspectRatio: false, indexAxis: line ? "x" : "y",
        plugins: { title: { display: true, text: spec.title }, legend: { display: false } },
      },
    }));
  }
}

function add(b) {
  if (seen.has(b.id + "@" + b.time)) return;
  seen.add(b.id + "@" + b.time);
  batches.push(b);
  if (batches.length > config.keep) {
    const gone = batches.shift();
    seen.delete(gone.id + "@" + gone.time);
  }
}

function draw() {
  const b = batches[batches.length - 1];
  if (!b) return;
  $("summary").textContent = batches.length + " batch" + (batches.length === 1 ? "" : "es") + " kept" +
    (lost ? ", " + lost + " missed" : "");
  config.charts.forEach((spec, i) => {
    const c = charts[i];
    if (spec.kind === "line") {
      c.data.labels = batches.map((x) => shortTime(x.time));
      c.data.datasets[0].data = batches.map((x) => x.charts[i].y ?? null);
    } else {
      const bars = b.charts[i].bars || [];
      c.data.labels = bars.map((x) => x.key);
      c.data.datasets[0].data = bars.map((x) => x.y);
    }
    c.update();
  });
  drawTable(b);
}

// drawTable shows a batch as Spark's console sink does: the header, then
// the columns in order of first appearance and a row per record.
function drawTable(b) {
  const rule = "-------------------------------------------";
  $("batch-title").textContent = rule + "\nBatch: " + b.id + " (" + timeText(b.time) + ")\n" + rule;
  const cols = [];
  for (const r of b.rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const head = document.createElement("tr");
  for (const k of cols) {
    const th = document.createElement("th");
    th.textContent = cellText(k);
    head.appendChild(th);
  }
  $("table").tHead.replaceChildren(cols.length ? head : "");
  const body = [];
  for (const r of b.rows) {
    const tr = document.createElement("tr");
    for (const k of cols) {
      const td = document.createElement("td");
      td.textContent = k in r ? cellText(r[k]) : "";
      if (r[k] === null) td.className = "null";
      tr.appendChild(td);
    }
    body.push(tr);
  }
  $("table").tBodies[0].replaceChildren(...body);
  const more = b.records - b.rows.length;
  $("more").textContent = cols.length === 0 ? "(no records)" :
    more > 0 ? "only showing top " + b.rows.length + (b.rows.length === 1 ? " row" : " rows") + " (" + b.records + " records)" : "";
}

function connect() {
  const es = new EventSource("events");
  es.addEventListener("config", (e) => {
    const cfg = JSON.parse(e.data);
    if (!config || cfg.run !== config.run) setup(cfg);
    status("live", "live");
  });
  es.addEventListener("batch", (e) => { add(JSON.parse(e.data)); draw(); });
  // Batches that left the sink's history before this page read them.
  es.addEventListener("lost", (e) => { lost += Number(e.data); });
  es.addEventListener("end", () => { status("input ended", "off"); es.close(); });
  es.onerror = () => { if (es.readyState !== EventSource.CLOSED) status("reconnecting", "off"); };
}

connect();
