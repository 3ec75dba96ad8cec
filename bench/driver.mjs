// The one load driver of scripts/bench-protocol and scripts/bench.
//
// Owns: the client side of every benchmark workload, always through the official `socket.io-client`
// (closed-loop echo, idle connections, connect storms, churn, session create/rehydrate), the measurement
// windows, latency statistics, and sampling the server process tree (/proc/PID/stat utime+stime,
// /proc/PID/status VmRSS) exactly at the window edges, plus its own CPU (process.cpuUsage()).
// Must not know: how servers are started, which server it drives (only a URL and a pid), or how results are
// compared and formatted (the Python orchestrator in bench/ does that).
//
// /proc sampling and latency statistics live in bench/procstat.mjs.
//
// Usage: node bench/driver.mjs '<json config>'   -> one JSON object on stdout; progress on stderr.
// Config keys: scenario, url, path, pid, clk_tck, time_limit_s, and the scenario's own keys (see SCENARIOS).
// Only loopback URLs are accepted; every loop is bounded by count and time and the process exits by itself.
import http from "node:http";
import { io } from "socket.io-client";
import * as proc from "./procstat.mjs";
import { latencyStats, now, round, sleep } from "./procstat.mjs";

const cfg = JSON.parse(process.argv[2] ?? "{}");
const PID = Number(cfg.pid);
const CLK_TCK = Number(cfg.clk_tck ?? 100);
const PATH = cfg.path ?? "/socket.io/";
const RUN = cfg.run_id ?? Math.random().toString(36).slice(2, 8);
const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });

const url = new URL(cfg.url ?? "");
if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
  fail(`refusing to drive a non-loopback address: ${cfg.url}`);
}
// Hard stop: whatever happens, the driver ends by itself.
setTimeout(() => fail(`time limit of ${cfg.time_limit_s ?? 300}s reached`), 1000 * (cfg.time_limit_s ?? 300)).unref();

function fail(message) {
  process.stdout.write(JSON.stringify({ error: message }) + "\n");
  process.exit(1);
}
const log = (msg) => process.stderr.write(`[driver ${cfg.scenario}] ${msg}\n`);
const sample = () => proc.sample(PID, CLK_TCK);
const windowOf = proc.windowOf;
const readStat = proc.readStat;
const quiesce = (maxMs) => proc.quiesce(PID, CLK_TCK, maxMs);

// ---- clients -----------------------------------------------------------------------------------------------

// Opens one Socket.IO connection. `setup(socket)` runs before the handshake so that listeners see the
// events a server sends with its CONNECT reply (history replay).
function connect(query = {}, setup = null, transport = "websocket", timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const socket = io(cfg.url, {
      path: PATH,
      transports: [transport],
      upgrade: false,
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
      perMessageDeflate: false, // same uncompressed frames whatever the server offers
      agent: transport === "polling" ? keepAliveAgent : false,
      query,
    });
    if (setup) setup(socket);
    const onConnect = () => {
      socket.off("connect_error", onError);
      resolve(socket);
    };
    const onError = (err) => {
      socket.off("connect", onConnect);
      socket.close();
      reject(new Error(`connect_error: ${err?.message ?? err}`));
    };
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
  });
}

// Runs fn(i) for i in [0, count) with at most `concurrency` in flight; failures are counted, not thrown.
async function pool(count, concurrency, fn, errors) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        errors.count++;
        if (errors.first === undefined) errors.first = String(err?.message ?? err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, concurrency) }, worker));
}

function closeAll(sockets) {
  for (const s of sockets) if (s) s.close();
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Session-protocol connection state: tracks the last event id seen and the echo of our own pending action.
function sessionState() {
  return { lastId: -1, events: 0, nonce: undefined, onEcho: null, onEvent: null };
}

function attachSession(socket, st) {
  socket.on("oh_event", (ev) => {
    st.events++;
    if (typeof ev?.id === "number" && ev.id > st.lastId) st.lastId = ev.id;
    if (st.onEvent) st.onEvent(ev);
    if (st.nonce !== undefined && ev?.args?.nonce === st.nonce) {
      st.nonce = undefined;
      const cb = st.onEcho;
      st.onEcho = null;
      if (cb) cb();
    }
  });
}

// One `oh_user_action` with an ack; resolves when both the ack and our own `oh_event` echo have arrived.
function act(socket, st, nonce, timeoutMs = 10000) {
  const echoed = new Promise((resolve) => {
    st.nonce = nonce;
    st.onEcho = resolve;
  });
  const acked = new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit("oh_user_action", actionPayload(nonce), (err, ack) => {
      if (err) reject(new Error("oh_user_action: no ack"));
      else if (ack && typeof ack === "object" && "error" in ack) reject(new Error(`ack error: ${ack.error}`));
      else resolve(ack);
    });
  });
  return withTimeout(Promise.all([acked, echoed]), timeoutMs, "oh_user_action echo");
}

function actionPayload(nonce) {
  return { action: "message", args: { content: "benchmark message", nonce } };
}

// ---- scenarios ---------------------------------------------------------------------------------------------

// bench-protocol: RSS per idle connection (websocket), K connections held open.
async function protoIdle() {
  const count = cfg.count ?? 1000;
  const errors = { count: 0 };
  const warm = [];
  await pool(Math.min(20, count), 20, async () => warm.push(await connect()), errors);
  closeAll(warm);
  await sleep(500);
  const before = sample();
  const sockets = [];
  await pool(count, cfg.concurrency ?? 100, async () => sockets.push(await connect()), errors);
  const connected = sample();
  await sleep(cfg.settle_ms ?? 1000);
  const after = sample();
  closeAll(sockets);
  return {
    idle_connections: sockets.length,
    connect_s: round((connected.t - before.t) / 1000, 3),
    ...rssPerConnection(before, after, sockets.length),
    errors: errors.count,
    first_error: errors.first,
  };
}

// RSS before and after opening n connections, and the growth per connection.
function rssPerConnection(before, after, n) {
  return {
    rss_before_kb: before.rss,
    rss_after_kb: after.rss,
    rss_per_conn_kb: n ? round((after.rss - before.rss) / n, 3) : null,
  };
}

// bench-protocol: N clients, closed-loop `message` -> `message-back` for duration_s after warmup_s.
async function protoEcho() {
  const clients = cfg.clients ?? 50;
  const transport = cfg.transport ?? "websocket";
  const payload = "x".repeat(cfg.payload_bytes ?? 32);
  const errors = { count: 0 };
  const sockets = [];
  await pool(clients, 50, async () => sockets.push(await connect({}, null, transport)), errors);
  if (sockets.length === 0) throw new Error(`no client connected (${errors.first})`);
  let phase = "warmup";
  let roundTrips = 0;
  let disconnects = 0;
  const lat = [];
  for (const s of sockets) {
    let sentAt = 0;
    const send = () => {
      sentAt = now();
      s.emit("message", payload);
    };
    s.on("message-back", () => {
      if (phase === "measure") {
        roundTrips++;
        lat.push(now() - sentAt);
      }
      if (phase !== "stop") send();
    });
    s.on("disconnect", () => {
      if (phase !== "stop") disconnects++;
    });
    s.send = send;
  }
  for (const s of sockets) s.send();
  await sleep(1000 * (cfg.warmup_s ?? 1));
  const a = sample();
  phase = "measure";
  await sleep(1000 * (cfg.duration_s ?? 5));
  phase = "stop";
  const b = sample();
  await sleep(100);
  closeAll(sockets);
  const w = windowOf(a, b);
  return {
    transport,
    clients: sockets.length,
    round_trips: roundTrips,
    rt_per_s: round(roundTrips / w.elapsed_s, 1),
    rt_per_cpu_s: w.server_cpu_s > 0 ? round(roundTrips / w.server_cpu_s, 1) : null,
    ...latencyStats(lat),
    ...w,
    disconnects,
    errors: errors.count,
    first_error: errors.first,
  };
}

// bench connect: N connections, each its own conversation, held open -> connects/s and RSS per connection.
async function sessionConnect() {
  const count = cfg.count ?? 2000;
  const errors = { count: 0 };
  const warm = [];
  await pool(20, 20, async (i) => warm.push(await connect({ conversation_id: `warm-${RUN}-${i}`, latest_event_id: -1 })), errors);
  closeAll(warm);
  await sleep(500);
  const before = sample();
  const sockets = [];
  const lat = [];
  await pool(
    count,
    cfg.concurrency ?? 100,
    async (i) => {
      const t = now();
      sockets.push(await connect({ conversation_id: `conn-${RUN}-${i}`, latest_event_id: -1 }));
      lat.push(now() - t);
    },
    errors,
  );
  const connected = sample();
  await sleep(cfg.settle_ms ?? 1000);
  const after = sample();
  closeAll(sockets);
  const w = windowOf(before, connected);
  return {
    connections: sockets.length,
    connects_per_s: round(sockets.length / w.elapsed_s, 1),
    connects_per_cpu_s: w.server_cpu_s > 0 ? round(sockets.length / w.server_cpu_s, 1) : null,
    connect_latency: latencyStats(lat),
    ...w,
    ...rssPerConnection(before, after, sockets.length),
    errors: errors.count,
    first_error: errors.first,
  };
}

// bench echo: K conversations x M connections; the first S connections of each conversation (all M unless
// `senders_per_conversation` says fewer: the moderate scenarios, one sender and three watchers as agent UIs are
// used) loop oh_user_action -> (ack + own oh_event); the others only receive. `transport` websocket | polling.
async function sessionEcho() {
  const K = cfg.conversations ?? 50;
  const M = cfg.per_conversation ?? 4;
  const S = Math.min(M, cfg.senders_per_conversation ?? M);
  const transport = cfg.transport ?? "websocket";
  const errors = { count: 0 };
  let phase = "setup";
  let roundTrips = 0;
  let deliveries = 0;
  let disconnects = 0;
  const lat = [];
  const conns = [];
  await pool(
    K * M,
    100,
    async (i) => {
      const st = sessionState();
      const s = await connect(
        { conversation_id: `echo-${RUN}-${i % K}`, latest_event_id: -1 },
        (sock) => attachSession(sock, st),
        transport,
      );
      s.on("disconnect", () => {
        if (phase !== "stop") disconnects++;
      });
      conns.push({ s, st, i, seq: 0, sender: Math.floor(i / K) < S });
    },
    errors,
  );
  if (conns.length === 0) throw new Error(`no client connected (${errors.first})`);
  for (const c of conns) {
    let sentAt = 0;
    let pending = 0;
    const done = () => {
      if (--pending > 0) return;
      if (phase === "measure") {
        roundTrips++;
        lat.push(now() - sentAt);
      }
      if (phase !== "stop") send();
    };
    const send = () => {
      pending = 2;
      const nonce = `${c.i}:${c.seq++}`;
      c.st.nonce = nonce;
      c.st.onEcho = done;
      sentAt = now();
      c.s.emit("oh_user_action", actionPayload(nonce), (ack) => {
        if (ack && typeof ack === "object" && "error" in ack) errors.count++;
        done();
      });
    };
    c.st.onEvent = () => {
      if (phase === "measure") deliveries++;
    };
    c.send = send;
  }
  phase = "warmup";
  for (const c of conns) if (c.sender) c.send();
  await sleep(1000 * (cfg.warmup_s ?? 1));
  const a = sample();
  phase = "measure";
  await sleep(1000 * (cfg.duration_s ?? 5));
  phase = "stop";
  const b = sample();
  await sleep(100);
  closeAll(conns.map((c) => c.s));
  const w = windowOf(a, b);
  return {
    conversations: K,
    per_conversation: M,
    senders_per_conversation: S,
    transport,
    connections: conns.length,
    round_trips: roundTrips,
    rt_per_s: round(roundTrips / w.elapsed_s, 1),
    rt_per_cpu_s: w.server_cpu_s > 0 ? round(roundTrips / w.server_cpu_s, 1) : null,
    deliveries,
    deliveries_per_s: round(deliveries / w.elapsed_s, 1),
    ...latencyStats(lat),
    ...w,
    disconnects,
    errors: errors.count,
    first_error: errors.first,
  };
}

// bench churn: `workers` loops of connect (latest_event_id = last seen) -> act -> disconnect, in rounds.
async function sessionChurn() {
  const rounds = cfg.rounds ?? 3;
  const workers = cfg.workers ?? 20;
  const lastSeen = new Array(workers).fill(-1);
  const seq = new Array(workers).fill(0);
  const out = [];
  const errors = { count: 0 };
  const base = sample();
  for (let r = 0; r < rounds; r++) {
    const a = sample();
    const deadline = now() + 1000 * (cfg.round_s ?? 5);
    let cycles = 0;
    const lat = [];
    await pool(
      workers,
      workers,
      async (w) => {
        while (now() < deadline) {
          const t = now();
          const st = sessionState();
          st.lastId = lastSeen[w];
          let s = null;
          try {
            s = await connect({ conversation_id: `churn-${RUN}-${w}`, latest_event_id: lastSeen[w] }, (sock) =>
              attachSession(sock, st),
            );
            await act(s, st, `${w}:${seq[w]++}`);
            lastSeen[w] = st.lastId;
            cycles++;
            lat.push(now() - t);
          } catch (err) {
            errors.count++;
            if (errors.first === undefined) errors.first = String(err?.message ?? err);
            await sleep(50);
          } finally {
            if (s) s.close();
          }
        }
      },
      errors,
    );
    const b = sample();
    await sleep(cfg.settle_ms ?? 500);
    const settled = sample();
    out.push({
      round: r + 1,
      cycles,
      cycles_per_s: round(cycles / windowOf(a, b).elapsed_s, 1),
      cycle_latency: latencyStats(lat),
      ...windowOf(a, b),
      rss_after_kb: settled.rss,
    });
  }
  const first = out[0].rss_after_kb;
  const last = out[out.length - 1].rss_after_kb;
  return {
    workers,
    rounds: out,
    cycles_per_s: round(out.reduce((x, r) => x + r.cycles_per_s, 0) / out.length, 1),
    rss_start_kb: base.rss,
    rss_growth_first_to_last_kb: last - first,
    errors: errors.count,
    first_error: errors.first,
  };
}

// bench sessions: create N sessions (connect + one action, connection held), disconnect all, optionally wait
// for passivation, then rehydrate each (reconnect with latest_event_id=-1 and receive its history).
async function sessionSessions() {
  const count = cfg.count ?? 10000;
  const concurrency = cfg.concurrency ?? 100;
  const errors = { count: 0 };
  const warm = [];
  await pool(
    20,
    20,
    async (i) => {
      const st = sessionState();
      const s = await connect({ conversation_id: `warm-${RUN}-${i}`, latest_event_id: -1 }, (k) => attachSession(k, st));
      warm.push(s);
      await act(s, st, `warm:${i}`);
    },
    errors,
  );
  closeAll(warm);
  await sleep(500);
  const before = sample();
  const sockets = new Array(count).fill(null);
  const createLat = [];
  await pool(
    count,
    concurrency,
    async (i) => {
      const t = now();
      const st = sessionState();
      const s = await connect({ conversation_id: `sess-${RUN}-${i}`, latest_event_id: -1 }, (k) =>
        attachSession(k, st),
      );
      sockets[i] = s;
      await act(s, st, `create:${i}`);
      createLat.push(now() - t);
    },
    errors,
  );
  const created = sample();
  await sleep(cfg.settle_ms ?? 1000);
  const live = sample();
  const createErrors = errors.count;
  closeAll(sockets);
  const disconnected = sample();
  let passivated = null;
  let quiesced;
  // Every server gets time to finish the disconnects (and ours its passivations) before rehydration starts.
  if ((cfg.passivation_wait_s ?? 0) > 0) await sleep(1000 * cfg.passivation_wait_s);
  else await sleep(cfg.settle_ms ?? 1000);
  quiesced = await quiesce(1000 * (cfg.quiesce_max_s ?? 30));
  if ((cfg.passivation_wait_s ?? 0) > 0) passivated = sample();
  const idle = sample(); // after the disconnects (and, for ours, the passivations)
  const rehydrateLat = [];
  let historyMismatch = 0;
  const r0 = sample();
  await pool(
    createLat.length ? count : 0,
    concurrency,
    async (i) => {
      const t = now();
      const st = sessionState();
      const expected = `create:${i}`;
      let copies = 0;
      // The session's history is the one action stored at creation; other events (status updates) may come too.
      const gotHistory = new Promise((resolve) => {
        st.onEvent = (ev) => {
          if (ev?.args?.nonce === expected && ++copies === 1) resolve();
        };
      });
      const s = await connect({ conversation_id: `sess-${RUN}-${i}`, latest_event_id: -1 }, (k) =>
        attachSession(k, st),
      );
      try {
        await withTimeout(gotHistory, 10000, "history");
        rehydrateLat.push(now() - t);
        await sleep(0);
        if (copies !== 1) historyMismatch++;
      } finally {
        s.close();
      }
    },
    errors,
  );
  const r1 = sample();
  const cw = windowOf(before, created);
  const rw = windowOf(r0, r1);
  return {
    sessions: createLat.length,
    create_per_s: round(createLat.length / cw.elapsed_s, 1),
    create_per_cpu_s: cw.server_cpu_s > 0 ? round(createLat.length / cw.server_cpu_s, 1) : null,
    create_latency: latencyStats(createLat),
    create_window: cw,
    rss_before_kb: before.rss,
    rss_live_kb: live.rss,
    // Live sessions each still hold their one connection here: the figure includes that connection.
    rss_per_live_session_kb: createLat.length ? round((live.rss - before.rss) / createLat.length, 3) : null,
    disconnect_s: round((disconnected.t - live.t) / 1000, 3),
    rss_idle_kb: idle.rss,
    rss_per_idle_session_kb: createLat.length ? round((idle.rss - before.rss) / createLat.length, 3) : null,
    passivation_waited_s: passivated ? round((passivated.t - disconnected.t) / 1000, 3) : null,
    rss_passivated_kb: passivated ? passivated.rss : null,
    rss_per_passivated_session_kb:
      passivated && createLat.length ? round((passivated.rss - before.rss) / createLat.length, 3) : null,
    rehydrated: rehydrateLat.length,
    rehydrate_per_s: round(rehydrateLat.length / rw.elapsed_s, 1),
    rehydrate_per_cpu_s: rw.server_cpu_s > 0 ? round(rehydrateLat.length / rw.server_cpu_s, 1) : null,
    rehydrate_latency: latencyStats(rehydrateLat),
    rehydrate_window: rw,
    history_duplicates: historyMismatch,
    server_quiet_before_rehydrate: quiesced,
    create_errors: createErrors,
    errors: errors.count,
    first_error: errors.first,
  };
}

const SCENARIOS = {
  proto_idle: protoIdle,
  proto_echo: protoEcho,
  connect: sessionConnect,
  echo: sessionEcho,
  churn: sessionChurn,
  sessions: sessionSessions,
};

const run = SCENARIOS[cfg.scenario];
if (!run) fail(`unknown scenario ${cfg.scenario}; one of ${Object.keys(SCENARIOS).join(", ")}`);
if (!Number.isInteger(PID) || readStat(PID) === null) fail(`no server process with pid ${cfg.pid}`);
const started = sample();
try {
  const result = await run();
  const ended = sample();
  result.driver_total = { wall_s: round((ended.t - started.t) / 1000, 3), cpu_s: round(ended.self - started.self, 3) };
  process.stdout.write(JSON.stringify(result) + "\n");
  keepAliveAgent.destroy();
  process.exit(0);
} catch (err) {
  fail(String(err?.stack ?? err));
}
