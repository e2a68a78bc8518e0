// The eventlistener operator console: one page, plain JavaScript, fed by
// the admin listener's stats stream (GET /v1/stats/stream, server-sent
// events read with fetch so the admin token can go in a header).
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "eventlistener.adminToken";

// ---- formatting -----------------------------------------------------------
const nf = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
function num(v) {
  if (v == null || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return nf.format(v / 1e9) + "G";
  if (a >= 1e6) return nf.format(v / 1e6) + "M";
  if (a >= 1e4) return nf.format(v / 1e3) + "k";
  return nf.format(v);
}
function bytes(v) {
  if (v == null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return nf.format(v) + " " + u[i];
}
function dur(s) {
  if (s == null) return "–";
  s = Math.round(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}
function ms(v) { return v == null ? "–" : (v < 10 ? v.toFixed(2) : nf.format(v)) + " ms"; }
function ago(t) {
  if (!t || t.startsWith("0001")) return "–";
  const s = (Date.now() - Date.parse(t)) / 1000;
  return dur(Math.max(0, s)) + " ago";
}
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
// pairs fills a <dl> with rows of [term, value, class], in place when it
// has them already: the page updates every second, and replacing nodes
// under the pointer would eat a click.
function pairs(dl, rows) {
  if (dl.children.length !== rows.length * 2) {
    dl.replaceChildren(...rows.flatMap(([k]) => [el("dt", { text: k }), el("dd")]));
  }
  rows.forEach(([k, v, cls], i) => {
    const dt = dl.children[2 * i], dd = dl.children[2 * i + 1];
    if (dt.textContent !== k) dt.textContent = k;
    if (dd.textContent !== v) dd.textContent = v;
    dd.className = cls || "";
  });
}

// keyed keeps one element per key in box, made by make(key) once, in the
// order of keys; update(element) runs on every render.
function keyed(box, keys, make, update) {
  const have = new Map([...box.children].map((c) => [c.dataset.key, c]));
  keys.forEach((k, i) => {
    let node = have.get(k);
    if (!node) { node = make(k); node.dataset.key = k; }
    have.delete(k);
    if (box.children[i] !== node) box.insertBefore(node, box.children[i] || null);
    update(node, k);
  });
  for (const gone of have.values()) gone.remove();
}

// ---- the admin token ------------------------------------------------------
const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
const headers = () => (token() ? { Authorization: "Bearer " + token() } : {});

function askToken() {
  return new Promise((resolve) => {
    const d = $("token-dialog");
    $("token-input").value = token();
    const done = (v) => { d.close(); cleanup(); resolve(v); };
    const ok = (ev) => {
      ev.preventDefault();
      const v = $("token-input").value.trim();
      if (!v) return;
      sessionStorage.setItem(TOKEN_KEY, v);
      done(v);
    };
    const cancel = () => done("");
    const forget = () => { sessionStorage.removeItem(TOKEN_KEY); done(""); };
    const form = $("token-form");
    form.addEventListener("submit", ok);
    $("token-cancel").addEventListener("click", cancel);
    $("token-forget").addEventListener("click", forget);
    d.addEventListener("cancel", cancel);
    function cleanup() {
      form.removeEventListener("submit", ok);
      $("token-cancel").removeEventListener("click", cancel);
      $("token-forget").removeEventListener("click", forget);
      d.removeEventListener("cancel", cancel);
    }
    d.showModal();
    $("token-input").focus();
  });
}

function confirmAction(text) {
  return new Promise((resolve) => {
    const d = $("confirm-dialog");
    $("confirm-text").textContent = text;
    d.returnValue = "";
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.showModal();
    $("confirm-ok").focus();
  });
}

function say(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("error", !!isError);
  m.hidden = false;
}

// admin runs an action that needs the token: asked for when there is none.
async function admin(what, method, url) {
  if (!state || !state.admin.token) {
    say(`Not done: ${what} needs the admin token, and this engine has none set (--admin-token).`, true);
    return null;
  }
  if (!token() && !(await askToken())) {
    say(`Not done: ${what} needs the admin token.`, true);
    return null;
  }
  let res;
  try {
    res = await fetch(url, { method, headers: headers() });
  } catch (e) {
    say(`${what} failed: ${e.message}`, true);
    return null;
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    say(`${what} refused (${res.status}): ${body.error || res.statusText}`, true);
    if (res.status === 401) { sessionStorage.removeItem(TOKEN_KEY); restartStreams(); }
    return null;
  }
  return body;
}

// ---- streams --------------------------------------------------------------
// stream reads server-sent events from url until aborted; it calls on(type,
// data) for each and throws when the connection ends.
async function stream(url, signal, on) {
  const res = await fetch(url, { headers: headers(), signal, cache: "no-store" });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    const err = new Error(body.error || res.statusText);
    err.status = res.status;
    throw err;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the stream ended");
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).replace(/^ /, "");
      }
      if (data) on(type, JSON.parse(data));
    }
  }
}

let state = null;
let statsAbort = null, tailAbort = null;

function restartStreams() {
  if (statsAbort) statsAbort.abort();
  if (tailAbort) tailAbort.abort();
  statsAbort = tailAbort = null;
  openStats();
}

// staleMs is how long the stats stream may send nothing (it sends every
// second) before it is taken as hung and opened again.
const staleMs = 5000;

function openStats() {
  const ctl = new AbortController();
  statsAbort = ctl;
  const conn = $("conn");
  let lastMsg = Date.now();
  const watchdog = setInterval(() => {
    if (statsAbort !== ctl) { clearInterval(watchdog); return; }
    if (Date.now() - lastMsg < staleMs) return;
    clearInterval(watchdog);
    ctl.abort();
    conn.textContent = "reconnecting (no data)";
    conn.className = "badge bad";
    openStats();
  }, 1000);
  stream("/v1/stats/stream", ctl.signal, (type, data) => {
    lastMsg = Date.now();
    conn.textContent = "live";
    conn.className = "badge good";
    if (type === "history") history(data.history, data.state);
    else if (type === "sample") sample(data.sample, data.state);
  }).catch((e) => {
    clearInterval(watchdog);
    if (ctl.signal.aborted) return;
    conn.textContent = e.status ? `refused: ${e.message}` : "reconnecting";
    conn.className = "badge bad";
    setTimeout(() => { if (statsAbort === ctl) openStats(); }, e.status === 503 ? 5000 : 2000);
  });
}

// ---- charts ---------------------------------------------------------------
const series = { t: [], events: [], requests: [], sinks: {} };
let charts = {};
let maxLen = 900;

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

function makeChart(id, lines, data) {
  const box = $(id);
  if (charts[id]) charts[id].destroy(); // its listeners go with it
  box.replaceChildren();
  const fg = css("--muted"), grid = css("--line");
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const opts = {
    width: Math.max(260, box.clientWidth), height: 190,
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
    series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 1.5, points: { show: false }, value: (u, v) => num(v) }))],
    axes: [axis, { ...axis, size: 56, values: (u, vals) => vals.map(num) }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  return new uPlot(opts, data, box);
}

function sinkNames() { return state ? state.sinks.map((s) => s.name) : []; }

function buildCharts() {
  const colors = ["--s1", "--s2", "--s3", "--s4"].map(css);
  charts.ingest = charts["chart-ingest"] = makeChart("chart-ingest", [
    { label: "events/s", color: colors[0] },
    { label: "requests/s", color: colors[2] },
  ], [series.t, series.events, series.requests]);
  const names = sinkNames();
  charts.sinks = charts["chart-sinks"] = makeChart("chart-sinks", names.map((n, i) => ({ label: n + " stored/s", color: colors[i % colors.length] })),
    [series.t, ...names.map((n) => series.sinks[n] || [])]);
}

function redraw() {
  if (!charts.ingest) return;
  charts.ingest.setData([series.t, series.events, series.requests]);
  charts.sinks.setData([series.t, ...sinkNames().map((n) => series.sinks[n] || [])]);
}

function push(s) {
  series.t.push(s.t / 1000);
  series.events.push(s.events);
  series.requests.push(s.requests);
  for (const n of sinkNames()) {
    (series.sinks[n] ||= new Array(series.t.length - 1).fill(null)).push(s.sinks[n] ? s.sinks[n].stored : null);
  }
  while (series.t.length > maxLen) {
    series.t.shift(); series.events.shift(); series.requests.shift();
    for (const n in series.sinks) series.sinks[n].shift();
  }
}

let lastSample = null;

function history(samples, st) {
  state = st;
  maxLen = Math.round(st.history_seconds / st.interval_seconds) || 900;
  series.t = []; series.events = []; series.requests = []; series.sinks = {};
  for (const n of sinkNames()) series.sinks[n] = [];
  for (const s of samples) push(s);
  buildCharts();
  lastSample = samples.length ? samples[samples.length - 1] : null;
  render();
  openTail();
}

function sample(s, st) {
  if (lastSample && s.t <= lastSample.t) return; // had it already
  state = st;
  push(s);
  lastSample = s;
  redraw();
  render();
}

// ---- rendering ------------------------------------------------------------
function render() {
  const st = state, s = lastSample || {};
  const n = st.node;
  $("node-summary").textContent = `${st.hostname || ""} · ${st.version} · up ${dur(st.uptime_seconds)} · ${n.master.master ? "master" : "not master"}`;
  const mode = $("mode");
  if (!st.admin.token) mode.textContent = "Read-only: this engine has no --admin-token, so actions are off.";
  else if (!st.admin.authorized) mode.textContent = "Read-only: enter the admin token to act and to see errors, paths and the live tail.";
  else mode.textContent = "Admin: actions are enabled for this tab.";
  $("token-button").textContent = st.admin.authorized ? "Admin token ✓" : "Admin token…";

  $("t-events").textContent = num(s.events);
  $("t-requests").textContent = num(s.requests);
  $("t-accepted").textContent = num(st.totals.accepted);
  $("t-refused").textContent = num(st.totals.refused);
  $("t-unavailable").textContent = num(st.totals.unavailable);
  $("t-unavailable").className = st.totals.unavailable > 0 ? "warn" : "";
  $("t-p50").textContent = ms(s.p50_ms);
  $("t-p99").textContent = ms(s.p99_ms);
  $("t-pending").textContent = num(s.pending_events);
  $("t-wal").textContent = `${bytes(n.wal.bytes)} of ${bytes(n.wal.max_bytes)}`;
  $("t-queue").textContent = bytes(s.queue_bytes);

  $("b-state").textContent = st.buffer.state;
  $("b-events").textContent = num(st.buffer.events);
  const reasons = Object.keys(st.buffer.flushes || {}).sort();
  $("b-flushes").replaceChildren(...(reasons.length ? reasons.map((r) => el("tr", {},
    el("td", { text: r }), el("td", { text: num(st.buffer.flushes[r]) }), el("td", { text: num((s.flushes || {})[r] || 0) })))
    : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: "no batch flushed yet" }))]));

  renderSinks(st, s);
  renderRedis(st, s);
  renderStreams(st);
  renderProxy(st);
  renderNode(st);
  renderCluster(st);
}

function breakerClass(b) { return b === "closed" ? "good" : b === "open" ? "bad" : "warn"; }

function renderSinks(st, s) {
  const replay = st.replay;
  const running = replay && replay.state === "running";
  const byName = new Map(st.sinks.map((k) => [k.name, k]));
  keyed($("sink-cards"), st.sinks.map((k) => k.name), (name) => {
    const card = el("article", { class: "card", id: "sink-" + name }, el("h3", { text: name }), el("dl", { class: "pairs" }),
      el("div", { class: "row" }, el("button", { type: "button", id: "replay-" + name, "aria-label": `Replay ${name}'s fallback backlog`,
        onclick: () => startReplay(name) }, "Replay backlog")),
      el("div", { class: "replay" }));
    return card;
  }, (card, name) => {
    const k = byName.get(name), ks = (s.sinks || {})[name] || {};
    card.dataset.backlogEvents = k.backlog.events;
    card.dataset.breaker = k.breaker;
    pairs(card.querySelector("dl"), [
      ["breaker", k.breaker, breakerClass(k.breaker)],
      ["store", k.reachable ? "reachable" : "unreachable" + (k.error ? ": " + k.error : ""), k.reachable ? "good" : "bad"],
      ["stored/s", num(ks.stored)],
      ["stored", num(k.stored_total)],
      ["to fallback", num(k.fallback_total)],
      ["lag", `${num(k.lag_events)} events, oldest ${dur(k.oldest_pending_seconds)}`],
      ["last error", k.last_error ? `${k.last_error} (${ago(k.last_error_at)})` : "none"],
      ["fallback backlog", `${num(k.backlog.files)} files, ${num(k.backlog.events)} events, ${bytes(k.backlog.bytes)}`],
    ]);
    card.querySelector("button").disabled = !!running;
    const box = card.querySelector(".replay");
    if (!replay || replay.sink !== name) { box.replaceChildren(); return; }
    if (!box.firstChild) {
      box.append(el("progress", { "aria-label": `Replay of ${name}` }), el("p", { class: "replay-result", role: "status" }));
    }
    const bar = box.querySelector("progress"), line = box.querySelector("p");
    bar.max = Math.max(1, replay.records);
    bar.value = replay.done;
    line.textContent = replay.state === "running" ? `replaying: ${num(replay.done)} of ${num(replay.records)} records`
      : `${replay.state === "done" ? "replay done" : "replay failed"}: ${replay.result}${replay.error ? " – " + replay.error : ""}`;
    line.className = "replay-result" + (replay.state === "failed" ? " bad" : "");
  });
}

async function startReplay(name) {
  if (!(await confirmAction(`Replay ${name}'s fallback backlog? Its records are sent to ${name} again; those it still refuses stay.`))) return;
  const body = await admin(`replaying ${name}'s backlog`, "POST", `/v1/sinks/${encodeURIComponent(name)}/replay`);
  if (body) say(`Replay of ${name} started: ${num(body.records)} records in the fallback files.`);
}

function renderRedis(st, s) {
  const r = st.redis;
  if (!r) return;
  let dl = $("redis").querySelector("dl");
  if (!dl) { dl = el("dl", { class: "pairs" }); $("redis").replaceChildren(dl); }
  pairs(dl, [
    ["running here", r.running ? "yes" : "no (another node is master)", r.running ? "good" : ""],
    ["mode", r.mode],
    ["master", r.master || "–"],
    ["subscribed", r.subscribed ? `yes, since ${ago(r.since)}` : `no, since ${ago(r.since)}`, r.subscribed ? "good" : r.running ? "bad" : ""],
    ["channels", (r.channels || []).join(", ") || "–"],
    ["patterns", (r.patterns || []).join(", ") || "–"],
    ["messages/s", num(s.redis)],
    ["messages", num(r.messages)],
    ["bad messages", `${num(r.bad_messages)} (${num(s.redis_bad)}/s)`, r.bad_messages > 0 ? "warn" : ""],
    ["last error", r.last_error || "none"],
  ]);
}

function renderStreams(st) {
  const g = st.streams;
  if (!g) return;
  const box = $("streams");
  if (!box.querySelector("table")) {
    box.replaceChildren(el("p", { class: "muted" }), el("div", { class: "scroll" }, el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ...["stream", "reading", "pending", "lag", "stored", "dead letters", "claimed", "last error"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody"))));
  }
  box.querySelector("p").textContent = `group ${g.group}, consumer ${g.consumer}` + (g.restarts ? `, ${g.restarts} restarts` : "");
  const byKey = new Map((g.streams || []).map((v) => [v.key, v]));
  keyed(box.querySelector("tbody"), [...byKey.keys()], (key) => el("tr", { "data-stream": key }, ...Array.from({ length: 8 }, () => el("td"))), (tr, key) => {
    const v = byKey.get(key), td = tr.children;
    td[0].textContent = key;
    td[1].textContent = v.reading ? "yes" : "no";
    td[1].className = v.reading ? "good" : "bad";
    td[2].textContent = num(v.pending);
    td[3].textContent = v.lag < 0 ? "unknown" : num(v.lag);
    td[3].className = v.lag > 0 ? "warn" : "";
    td[4].textContent = num(v.stored);
    td[5].textContent = num(v.dead);
    td[5].className = v.dead > 0 ? "warn" : "";
    td[6].textContent = num(v.claimed);
    td[7].textContent = v.last_error ? `${v.last_error} (${ago(v.last_error_at)})` : "none";
  });
}

function renderProxy(st) {
  const p = st.proxy;
  if (!p) return;
  const box = $("proxy");
  if (!box.querySelector("table")) {
    box.replaceChildren(el("p", { class: "polled" }), el("div", { class: "scroll" }, el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ...["backend", "server", "status", "check", "weight", "last change", "actions"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody"))));
  }
  const head = box.querySelector(".polled");
  head.className = "polled " + (p.reachable ? "muted" : "bad");
  head.textContent = p.reachable ? `polled ${ago(p.polled_at)}` : `unreachable: ${p.error || ""}`;
  const servers = new Map((p.servers || []).map((v) => [`${v.backend}/${v.server}`, v]));
  keyed(box.querySelector("tbody"), [...servers.keys()], (label) => {
    const v = servers.get(label);
    const act = (a, text) => el("button", { type: "button", class: a === "enable" ? "" : "danger", "data-action": a,
      "aria-label": `${text} ${label}`, onclick: () => proxyAction(v.backend, v.server, a) }, text);
    return el("tr", { "data-server": label }, el("td", { text: v.backend }), el("td", { text: v.server }),
      el("td", { "data-field": "status" }), el("td"), el("td"), el("td"),
      el("td", {}, el("div", { class: "row" }, act("enable", "Enable"), act("disable", "Disable"), act("drain", "Drain"))));
  }, (tr, label) => {
    const v = servers.get(label), td = tr.children;
    td[2].textContent = v.status_raw || v.status;
    td[2].className = v.status === "UP" ? "good" : v.status === "DOWN" ? "bad" : "warn";
    td[3].textContent = v.check_status || "–";
    td[4].textContent = String(v.weight);
    td[5].textContent = v.last_change_seconds >= 0 ? dur(v.last_change_seconds) + " ago" : "–";
  });
}

async function proxyAction(backend, server, action) {
  const verb = { enable: "Enable", disable: "Disable (maintenance)", drain: "Drain" }[action];
  if (!(await confirmAction(`${verb} ${backend}/${server} in HAProxy?`))) return;
  const body = await admin(`${action} ${backend}/${server}`, "POST",
    `/v1/proxy/servers/${encodeURIComponent(backend)}/${encodeURIComponent(server)}/${action}`);
  if (body) say(`${backend}/${server}: ${action} done.`);
}

function renderCluster(st) {
  const c = st.cluster || { alone: true };
  const sum = $("cluster-summary"), table = $("cluster-table");
  if (c.alone) {
    sum.textContent = c.reason || "This node runs alone.";
    table.hidden = true;
    return;
  }
  const nodes = c.nodes || [];
  sum.textContent = `${nodes.length} node${nodes.length === 1 ? "" : "s"} in the registry` + (c.error ? ` (registry: ${c.error})` : "");
  sum.className = c.error ? "bad" : "muted";
  table.hidden = false;
  const byID = new Map(nodes.map((n) => [n.id, n]));
  keyed($("cluster-rows"), nodes.map((n) => n.id), (id) => el("tr", { "data-node": id }, ...Array.from({ length: 8 }, () => el("td"))), (tr, id) => {
    const n = byID.get(id), td = tr.children;
    td[0].textContent = id + (id === c.self ? " (this one)" : "");
    td[1].textContent = n.addr;
    td[2].textContent = n.role;
    td[3].textContent = n.accepting ? "yes" : "no";
    td[3].className = n.accepting ? "good" : "bad";
    td[4].textContent = num(n.pending_events);
    td[5].textContent = `${bytes(n.wal_bytes)} of ${bytes(n.wal_max_bytes)}`;
    td[6].textContent = (n.sinks || []).map((k) => `${k.name} ${k.breaker}`).join(", ");
    td[7].textContent = ago(n.updated_at);
  });
}

function renderNode(st) {
  const n = st.node, m = n.master;
  pairs($("node-pairs"), [
    ["host", st.hostname || "–"],
    ["version", st.version],
    ["uptime", dur(st.uptime_seconds)],
    ["master duties", m.master ? "yes" : "no", m.master ? "good" : ""],
    ["why", m.reason + (m.vip ? ` (VIP ${m.vip})` : "")],
    ["accepting", n.accepting ? "yes" : "no (stopping)", n.accepting ? "good" : "bad"],
    ["ready", n.ready ? "yes" : "no: " + (n.not_ready || ""), n.ready ? "good" : "bad"],
    ["ack", n.ack],
    ["WAL", `${n.wal.segments} segments, ${bytes(n.wal.bytes)} of ${bytes(n.wal.max_bytes)}, when full: ${n.wal.when_full}`],
    ["WAL folder", n.wal.dir],
  ]);
}

// ---- live tail --------------------------------------------------------------
let tailPaused = false;
const tailMax = 200;

function openTail() {
  if (tailAbort) return;
  if (state.admin.token && !state.admin.authorized) {
    $("tail-rate").textContent = "The live tail shows events' data: enter the admin token to see it.";
    return;
  }
  const ctl = new AbortController();
  tailAbort = ctl;
  const q = new URLSearchParams();
  const type = $("tail-type").value.trim(), source = $("tail-source").value.trim();
  if (type) q.set("type", type);
  if (source) q.set("source", source);
  $("tail-list").replaceChildren();
  stream("/v1/tail/stream?" + q, ctl.signal, (kind, data) => {
    if (kind === "rate") {
      $("tail-rate").textContent = data.matched > data.shown
        ? `sampled: showing ${num(data.shown)} of ${num(data.matched)} matching events/s`
        : `${num(data.matched)} matching events/s`;
    } else if (kind === "event" && !tailPaused) addTail(data);
  }).catch((e) => {
    if (ctl.signal.aborted) return;
    $("tail-rate").textContent = `tail: ${e.status ? "refused: " : "reconnecting: "}${e.message}`;
    if (tailAbort === ctl) tailAbort = null;
    if (!e.status || e.status === 503) setTimeout(() => { if (!tailAbort && state) openTail(); }, 3000);
  });
}

function addTail(e) {
  const data = e.data !== undefined ? JSON.stringify(e.data) : e.preview + ` … (${bytes(e.data_bytes)} in all)`;
  const li = el("li", { "data-type": e.type, "data-source": e.source },
    el("div", { class: "meta", text: `${new Date(e.received_at).toLocaleTimeString()} · ${e.type} · ${e.source}${e.subject ? " · " + e.subject : ""} · ${e.id}` }),
    el("div", { text: data }));
  const list = $("tail-list");
  list.prepend(li);
  while (list.children.length > tailMax) list.lastChild.remove();
}

$("tail-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (tailAbort) tailAbort.abort();
  tailAbort = null;
  if (state) openTail();
});
$("tail-pause").addEventListener("click", (ev) => {
  tailPaused = !tailPaused;
  ev.target.setAttribute("aria-pressed", String(tailPaused));
  ev.target.textContent = tailPaused ? "Resume" : "Pause";
});
$("token-button").addEventListener("click", async () => {
  await askToken();
  restartStreams();
});
$("confirm-cancel").addEventListener("click", () => {}); // closes the dialog (method=dialog)

// Charts follow the page's width and the system's theme.
let resizeTimer = null;
new ResizeObserver(() => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const [id, c] of [["chart-ingest", charts.ingest], ["chart-sinks", charts.sinks]]) {
      if (c) c.setSize({ width: Math.max(260, $(id).clientWidth), height: 190 });
    }
  }, 100);
}).observe(document.querySelector("main"));
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { if (state) buildCharts(); });

openStats();
