// Session Supervisor dashboard: vanilla JS, no build step.
// The admin token is sent once, in the login POST body; the server answers with an HttpOnly cookie and a
// CSRF token kept in this page's memory only (never in the URL, never in localStorage).
"use strict";
(function () {
  const API = "/dashboard/api/";
  const PAGE_SIZE = 50;
  const EVENTS_PAGE = 100;
  const $ = (id) => document.getElementById(id);
  let csrf = null;
  let socket = null;
  let pollTimer = null;
  let ticks = 0;
  const series = [];
  const list = { cursors: [null], index: 0, next: null, state: "" };
  const detail = { id: null, after: -1, loading: false, shown: null };

  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (opts.method === "POST") {
      opts.headers["Content-Type"] = "application/json";
      if (csrf) opts.headers["X-CSRF-Token"] = csrf;
    }
    const res = await fetch(API + path, opts);
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (res.status === 401) { showLogin(); throw new Error("unauthorized"); }
    if (!res.ok) throw new Error((body && body.error && body.error.message) || res.statusText);
    return body;
  }

  function text(el, value) { el.textContent = value === null || value === undefined ? "" : String(value); }
  function cell(tr, value, cls) {
    const td = document.createElement("td");
    if (value instanceof Node) td.appendChild(value); else text(td, value);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function stateBadge(state) {
    const span = document.createElement("span");
    span.className = "state " + state;
    span.dataset.state = state;
    text(span, state);
    return span;
  }
  function ago(ts) {
    if (!ts) return "";
    const s = Math.max(0, Date.now() / 1000 - ts);
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return new Date(ts * 1000).toLocaleString();
  }

  // ---- login -------------------------------------------------------------------------------------------
  function showLogin(message) {
    csrf = null;
    disconnectLive();
    $("app-view").hidden = true;
    $("logout").hidden = true;
    $("login-view").hidden = false;
    const err = $("login-error");
    err.hidden = !message;
    text(err, message || "");
  }
  async function loggedIn() {
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("logout").hidden = false;
    connectLive();
    try {
      const s = await api("series");
      series.length = 0;
      for (const p of s.samples) series.push(p);
      drawChart();
    } catch (e) { /* the chart fills from the ticks */ }
    route();
  }
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("token");
    const res = await fetch(API + "login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: input.value }),
    });
    input.value = "";
    if (!res.ok) { showLogin("Wrong admin token."); return; }
    csrf = (await res.json()).csrf;
    loggedIn();
  });
  $("logout").addEventListener("click", async () => {
    try { await api("logout", { method: "POST" }); } catch (e) { /* shown as login anyway */ }
    showLogin();
  });

  // ---- live updates: the /dashboard Socket.IO namespace, or polling without the client bundle ---------
  function connectLive() {
    if (socket || pollTimer) return;
    if (typeof io === "function") {
      socket = io("/dashboard", { withCredentials: true });
      socket.on("connect", () => { $("live").className = "badge on"; text($("live"), "live"); });
      socket.on("disconnect", () => { $("live").className = "badge off"; text($("live"), "offline"); });
      socket.on("connect_error", () => { $("live").className = "badge off"; text($("live"), "offline"); });
      socket.on("tick", onTick);
    } else {
      pollTimer = setInterval(() => onTick(null), 2000);
    }
  }
  function disconnectLive() {
    if (socket) { socket.close(); socket = null; }
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }
  function onTick(tick) {
    if (tick) {
      series.push(tick);
      while (series.length > 600) series.shift();
      text($("c-connections"), tick.connections);
      text($("c-eps"), tick.events_per_second.toFixed(1));
      drawChart();
    }
    ticks += 1;
    if (ticks % 5 === 0) refreshStatus();  // the status counts stored sessions: every 5 s is enough
    if (detail.id) refreshDetail(); else loadList();
  }

  // ---- counters and chart ------------------------------------------------------------------------------
  async function refreshStatus() {
    const s = await api("status");
    text($("c-live"), s.live_sessions);
    text($("c-stored"), s.stored_sessions === null ? "?" : s.stored_sessions);
    text($("c-connections"), s.connections);
    text($("c-passivations"), s.passivations);
    text($("c-crashes"), s.crashes);
  }
  function drawChart() {
    const canvas = $("chart");
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 4;
    ctx.clearRect(0, 0, w, h);
    const pts = series.slice(-300);
    text($("chart-span"), pts.length);
    if (pts.length < 2) return;
    const line = (key, color) => {
      const max = Math.max(1, ...pts.map((p) => p[key]));
      ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
      pts.forEach((p, i) => {
        const x = pad + (i / (pts.length - 1)) * (w - 2 * pad);
        const y = h - pad - (p[key] / max) * (h - 2 * pad);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
      ctx.fillStyle = color; ctx.font = "11px sans-serif";
      ctx.fillText(key === "connections" ? "max " + max : "max " + max.toFixed(1) + "/s",
        key === "connections" ? 6 : 90, 12);
    };
    line("connections", "#2e6bd8");
    line("events_per_second", "#e67e22");
  }

  // ---- the list ------------------------------------------------------------------------------------------
  function newRow(id) {
    const tr = document.createElement("tr");
    tr.dataset.session = id;
    const a = document.createElement("a");
    a.href = "#/session/" + encodeURIComponent(id);
    const code = document.createElement("code");
    text(code, id);
    a.appendChild(code);
    cell(tr, a);
    cell(tr, stateBadge(""));
    cell(tr, "", "connections");
    for (let i = 0; i < 5; i++) cell(tr, "");
    return tr;
  }
  async function loadList() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const after = list.cursors[list.index];
    if (after) params.set("after", after);
    if (list.state) params.set("state", list.state);
    const page = await api("sessions?" + params.toString());
    list.next = page.next_after;
    $("prev").disabled = list.index === 0;
    $("next").disabled = !list.next;
    text($("page-label"), "page " + (list.index + 1));
    // Rows are kept and their cells updated in place: a tick never detaches what the operator points at.
    const tbody = $("sessions").tBodies[0];
    const existing = new Map();
    for (const tr of Array.from(tbody.rows)) existing.set(tr.dataset.session, tr);
    page.sessions.forEach((s, i) => {
      let tr = existing.get(s.session_id);
      existing.delete(s.session_id);
      if (!tr) tr = newRow(s.session_id);
      const values = [s.state, s.connections, s.mailbox_depth, ago(s.last_activity), s.event_count,
        s.owner || "", s.node || s.owner_node || ""];
      values.forEach((v, j) => {
        const td = tr.cells[j + 1];
        if (j === 0) {
          const badge = td.firstChild;
          if (badge.dataset.state !== v) { badge.dataset.state = v; badge.className = "state " + v; text(badge, v); }
        } else if (td.textContent !== String(v)) text(td, v);
      });
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    for (const tr of existing.values()) tr.remove();
    $("list-empty").hidden = page.sessions.length > 0;
  }
  $("state-filter").addEventListener("change", (ev) => {
    list.state = ev.target.value; list.cursors = [null]; list.index = 0; loadList();
  });
  $("next").addEventListener("click", () => {
    if (!list.next) return;
    list.cursors = list.cursors.slice(0, list.index + 1);
    list.cursors.push(list.next); list.index += 1; loadList();
  });
  $("prev").addEventListener("click", () => { if (list.index > 0) { list.index -= 1; loadList(); } });

  // ---- one session ---------------------------------------------------------------------------------------
  async function openSession(id) {
    detail.id = id; detail.after = -1; detail.shown = null;
    text($("s-id"), id);
    text($("action-result"), "");
    $("s-events").tBodies[0].replaceChildren();
    await refreshDetail();
  }
  async function refreshDetail() {
    const id = detail.id;
    let s;
    try { s = await api("sessions/" + encodeURIComponent(id)); } catch (e) {
      text($("action-result"), e.message); return;
    }
    if (id !== detail.id) return;
    const key = JSON.stringify(s);
    if (key !== detail.shown) { detail.shown = key; renderDetail(s); }
    if (detail.after === -1 || $("tail").checked) await loadEvents();
  }
  function renderDetail(s) {
    const dl = $("s-facts");
    dl.replaceChildren();
    const facts = [["State", stateBadge(s.state)], ["Connections", s.connections],
      ["Mailbox depth", s.mailbox_depth], ["Last activity", ago(s.last_activity)],
      ["Events", s.event_count], ["Restarts", s.restarts], ["User", s.owner || "-"],
      ["Owner node", s.node || s.owner_node || "this node"]];
    for (const [k, v] of facts) {
      const dt = document.createElement("dt"); text(dt, k);
      const dd = document.createElement("dd");
      if (v instanceof Node) dd.appendChild(v); else text(dd, v);
      if (k === "State") dd.id = "s-state";
      dl.append(dt, dd);
    }
    const tbody = $("s-connections").tBodies[0];
    tbody.replaceChildren();
    for (const c of s.connection_details || []) {
      const tr = document.createElement("tr");
      cell(tr, c.sid); cell(tr, c.user_id); cell(tr, c.transport); cell(tr, c.remote_address); cell(tr, ago(c.since));
      tbody.appendChild(tr);
    }
  }
  async function loadEvents() {
    if (detail.loading) return;
    detail.loading = true;
    try {
      const page = await api("sessions/" + encodeURIComponent(detail.id) + "/events?after=" + detail.after +
        "&limit=" + EVENTS_PAGE);
      const tbody = $("s-events").tBodies[0];
      for (const ev of page.events) {
        const tr = document.createElement("tr");
        cell(tr, ev.id);
        cell(tr, [ev.source, ev.action || ev.type || ev.kind].filter(Boolean).join(" "));
        cell(tr, JSON.stringify(ev), "payload");
        tbody.appendChild(tr);
      }
      detail.after = page.next_after;
      $("more-events").hidden = !page.more;
    } finally { detail.loading = false; }
  }
  $("more-events").addEventListener("click", loadEvents);

  const confirmDialog = $("confirm");
  function confirmAction(message) {
    return new Promise((resolve) => {
      text($("confirm-text"), message);
      confirmDialog.returnValue = "";
      confirmDialog.addEventListener("close", () => resolve(confirmDialog.returnValue === "ok"), { once: true });
      confirmDialog.showModal();
    });
  }
  async function act(action, message) {
    const id = detail.id;
    if (!(await confirmAction(message))) return;
    try {
      const r = await api("sessions/" + encodeURIComponent(id) + "/" + action, { method: "POST", body: "{}" });
      text($("action-result"), action + ": now " + r.state);
    } catch (e) { text($("action-result"), action + " failed: " + e.message); }
    await refreshDetail();
  }
  $("passivate").addEventListener("click", () => act("passivate", "Passivate session " + detail.id + "?"));
  $("kill").addEventListener("click", () =>
    act("kill", "Kill session " + detail.id + "? It ends without a snapshot."));

  // ---- routing (hash: nothing secret ever goes in the URL) ------------------------------------------------
  function route() {
    if (csrf === null) return;
    const m = location.hash.match(/^#\/session\/(.+)$/);
    $("list-view").hidden = !!m;
    $("session-view").hidden = !m;
    if (m) openSession(decodeURIComponent(m[1]));
    else { detail.id = null; loadList(); }
    refreshStatus();
  }
  window.addEventListener("hashchange", route);

  (async function start() {
    const res = await fetch(API + "me", { credentials: "same-origin" });
    if (res.ok) { csrf = (await res.json()).csrf; loggedIn(); } else showLogin();
  })();
})();
