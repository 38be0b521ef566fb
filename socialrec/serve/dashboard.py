"""The dashboard page served at ``/``: plain HTML and JavaScript, no external resources (the
service may run without internet). It asks for an API key (or reads it from the URL fragment
``#key=...``, which browsers never send to the server), looks a user up and draws live charts of
request rate, p99 latency and click-through rate on canvases from /v1/admin/stats, and the
engagement timeline with its burst alerts and their keywords from /v1/trends, and (for posts with
text) the topic alerts (a burst with a sharp sentiment drop) and the main topics' sentiment. When
the service hosts several scenarios (GET /v1/scenarios), a selector picks the scenario that the
look-up and the trends read (``?scenario=``), and the status line names it."""

DASHBOARD_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>socialrec dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.2em}
.row{display:flex;gap:1.5em;flex-wrap:wrap} .col{flex:1;min-width:300px}
input{padding:.3em;font-size:1em} button{padding:.3em .8em;font-size:1em}
li{margin:.25em 0} .why{color:#555;font-size:.9em} .err{color:#b00}
canvas{border:1px solid #ccc;background:#fafafa} .small{color:#666;font-size:.85em}
</style></head><body>
<h1>socialrec dashboard</h1>
<p><label>API key <input id="key" type="password" size="40" placeholder="sr_..."></label>
<span id="status" class="small"></span></p>
<form id="lookup-form"><label>User id <input id="user" size="24"></label>
<button id="lookup" type="submit">Look up</button>
<label id="scenario-box" hidden>Scenario <select id="scenario"></select></label></form>
<div class="row">
 <div class="col"><h2>Recommendations</h2><ol id="recs"></ol></div>
 <div class="col"><h2>Friend suggestions</h2><ol id="friends"></ol>
  <h2>Recent activity</h2><ul id="activity"></ul></div>
</div>
<h2>Live (last 10 s windows, refreshed every 2 s)</h2>
<div class="row">
 <div><div class="small">requests / s: <b id="rps">-</b></div><canvas id="chart-rps" width="320" height="120"></canvas></div>
 <div><div class="small">p99 latency ms: <b id="p99">-</b></div><canvas id="chart-p99" width="320" height="120"></canvas></div>
 <div><div class="small">click-through rate: <b id="ctr">-</b></div><canvas id="chart-ctr" width="320" height="120"></canvas></div>
</div>
<h2>Trends (daily engagements, last 30 days of the served data; refreshed every 30 s)</h2>
<div class="row">
 <div><canvas id="chart-trends" width="480" height="120"></canvas></div>
 <div class="col"><div class="small">burst alerts and their keywords</div><ul id="trends"></ul></div>
 <div class="col"><div class="small">topic alerts: a burst with a sharp sentiment drop</div><ul id="topic-alerts"></ul>
  <div class="small">main topics (engagements, mean sentiment)</div><ul id="post-topics"></ul></div>
</div>
<script>
"use strict";
const keyInput = document.getElementById("key");
const m = location.hash.match(/key=([^&]+)/);
keyInput.value = m ? decodeURIComponent(m[1]) : (sessionStorage.getItem("socialrec-key") || "");
keyInput.addEventListener("change", () => sessionStorage.setItem("socialrec-key", keyInput.value));
function status(text, bad) { const s = document.getElementById("status"); s.textContent = text; s.className = bad ? "err" : "small"; }
async function api(path) {
  const r = await fetch(path, {headers: {"Authorization": "Bearer " + keyInput.value}});
  if (!r.ok) { throw new Error(r.status + " " + ((await r.json().catch(() => ({}))).detail || r.statusText)); }
  return r.json();
}
function fill(id, rows) {
  const el = document.getElementById(id); el.replaceChildren();
  for (const row of rows) { const li = document.createElement("li"); li.append(...row); el.append(li); }
  if (!rows.length) { const li = document.createElement("li"); li.textContent = "(none)"; li.className = "small"; el.append(li); }
}
function span(text, cls) { const s = document.createElement("span"); s.textContent = text; if (cls) s.className = cls; return s; }
const scenarioBox = document.getElementById("scenario-box"), scenarioSel = document.getElementById("scenario");
function inScenario() { return scenarioBox.hidden || !scenarioSel.value ? "" : "&scenario=" + encodeURIComponent(scenarioSel.value); }
async function scenarios() {
  if (!keyInput.value) return;
  try {
    const s = await api("/v1/scenarios"), chosen = scenarioSel.value;
    scenarioSel.replaceChildren(...s.scenarios.map(n => { const o = document.createElement("option"); o.value = n;
      o.textContent = n + (n === s.default ? " (default)" : ""); return o; }));
    if (s.scenarios.includes(chosen)) scenarioSel.value = chosen;
    scenarioBox.hidden = s.scenarios.length < 2;
  } catch (e) { scenarioBox.hidden = true; }
}
async function lookup(ev) {
  if (ev) ev.preventDefault();
  const user = encodeURIComponent(document.getElementById("user").value.trim());
  if (!user) return;
  try {
    const [recs, acts] = await Promise.all([api(`/v1/users/${user}/recommendations?k=10&explain=true${inScenario()}`),
                                           api(`/v1/users/${user}/activity?limit=15${inScenario()}`)]);
    fill("recs", recs.items.map(r => [span(r.title + " "), document.createElement("br"), span(r.explanation || "", "why")]));
    fill("activity", acts.events.map(e => [span(`${new Date(e.ts * 1000).toISOString().slice(0, 19)} ${e.kind} ${e.item_id || e.target_user_id || ""}`)]));
    try {
      const fr = await api(`/v1/users/${user}/friend-suggestions?k=10${inScenario()}`);
      fill("friends", fr.users.map(u => [span(`${u.user_id} (${u.score.toFixed(2)})`)]));
    } catch (e) { fill("friends", []); }
    status((recs.scenario ? `scenario ${recs.scenario}, ` : "") + `model ${recs.model_version}`, false);
  } catch (e) { status("lookup failed: " + e.message, true); }
}
document.getElementById("lookup-form").addEventListener("submit", lookup);
function draw(id, values, fmt) {
  const c = document.getElementById(id), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1e-9, ...values);
  g.strokeStyle = "#2a6fdb"; g.lineWidth = 2; g.beginPath();
  values.forEach((v, i) => { const x = values.length > 1 ? i * (c.width - 10) / (values.length - 1) + 5 : 5;
    const y = c.height - 5 - v / max * (c.height - 20); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke(); g.fillStyle = "#555"; g.fillText("max " + fmt(max), 5, 12);
  c.dataset.points = String(values.length);
}
async function refresh() {
  if (!keyInput.value) return;
  try {
    const s = await api("/v1/admin/stats");
    const series = s.series.slice(-60);
    draw("chart-rps", series.map(p => p.rps), v => v.toFixed(1));
    draw("chart-p99", series.map(p => p.p99_ms), v => v.toFixed(1));
    draw("chart-ctr", series.map(p => p.ctr), v => (100 * v).toFixed(1) + "%");
    document.getElementById("rps").textContent = s.now.rps.toFixed(1);
    document.getElementById("p99").textContent = s.now.p99_ms.toFixed(1);
    document.getElementById("ctr").textContent = (100 * s.now.ctr).toFixed(2) + "%";
  } catch (e) { document.getElementById("rps").textContent = "(charts need an admin key)"; }
}
async function trends() {
  if (!keyInput.value) return;
  try {
    const t = await api("/v1/trends?window=1d&last=30" + inScenario());
    draw("chart-trends", t.windows.map(w => w.count), v => v.toFixed(0));
    fill("trends", t.topics.map(p => [span(`${p.start.slice(0, 10)} (${p.volume}) `), span(p.keywords.join(" "), "why")]));
    fill("topic-alerts", t.topic_alerts.map(a => [span(`${a.start.slice(0, 10)} (${a.volume}, sentiment ${a.sentiment.toFixed(2)}, ` +
                                                        `drop ${a.drop.toFixed(2)}) `), span(a.keywords.join(" "), "why")]));
    fill("post-topics", t.post_topics.map(p => [span(`${p.volume}, ${p.sentiment === null ? "-" : p.sentiment.toFixed(2)} `),
                                                 span(p.keywords.join(" "), "why")]));
  } catch (e) { fill("trends", []); fill("topic-alerts", []); fill("post-topics", []); }
}
refresh(); setInterval(refresh, 2000);
trends(); setInterval(trends, 30000); keyInput.addEventListener("change", trends);
scenarios().then(trends); keyInput.addEventListener("change", scenarios);
scenarioSel.addEventListener("change", () => { lookup(); trends(); });
</script></body></html>
"""
