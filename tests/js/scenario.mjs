// Runs one scripted Socket.IO session with the official socket.io-client and reports what it observed.
//
// Owns: turning a JSON scenario into socket.io-client calls, and every observation into one JSON line on
// stdout. Knows nothing about our server or about what a test asserts.
//
// Input: a JSON scenario as the first argument, or on stdin when there is no argument:
//   {
//     "url": "http://127.0.0.1:8000",      // required
//     "path": "/socket.io/",               // default "/socket.io/"
//     "transports": ["websocket"],         // default ["polling", "websocket"] (the client's own default)
//     "namespace": "/",                    // default "/"
//     "query": {...}, "auth": {...},       // handshake query and auth
//     "options": {...},                    // any other io() option (reconnection defaults to false here)
//     "acks": {"event": [reply args]},     // how to answer server calls; default: echo the call's args
//     "timeout": 30000,                    // whole scenario, ms
//     "steps": [...]
//   }
// Steps, run in order:
//   {"op": "expect", "type": "event", "name": "x", "count": 1, "timeout": 5000}
//       wait until `count` observations of that type (and name, for events) were seen since the start
//   {"op": "emit", "event": "x", "args": [...]}
//   {"op": "emitWithAck", "event": "x", "args": [...], "timeout": 5000}   -> {"type": "ack", "event", "args"}
//   {"op": "disconnect"}
//   {"op": "connect"} / {"op": "reconnect", "query": {...}, "auth": {...}}   (optional new query / auth)
//   {"op": "wait", "ms": 100}
//   {"op": "cut"}   close the underlying Engine.IO connection without a Socket.IO disconnect (a transport
//                   cut: with "reconnection": true in options, the client reconnects by itself)
// Binary: an argument {"$binary": "<base64>"} is sent as a Buffer; received Buffers are printed that way.
// Output, one JSON object per line: {"type": "connect", "id", "recovered"}, {"type": "connect_error",
// "message", "data"}, {"type": "disconnect", "reason"}, {"type": "event", "name", "args", "ack": bool},
// {"type": "ack", "event", "args"}, {"type": "done"}; on failure {"type": "timeout", ...} (exit 2) or
// {"type": "error", "message"} (exit 1).

import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");

function fail(type, detail, code) {
  out({ type, ...detail });
  process.exit(code);
}

function readScenario() {
  const text = process.argv[2] ?? readFileSync(0, "utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    return fail("error", { message: `bad scenario JSON: ${err.message}` }, 1);
  }
}

function toBuffer(value) {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function encode(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $binary: toBuffer(value).toString("base64") };
  }
  if (Array.isArray(value)) return value.map(encode);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  }
  return value;
}

function decode(value) {
  if (Array.isArray(value)) return value.map(decode);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$binary") return Buffer.from(value.$binary, "base64");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v)]));
  }
  return value;
}

const scenario = readScenario();
if (typeof scenario.url !== "string") fail("error", { message: "scenario.url is required" }, 1);

const seen = [];
let wake = () => {};
function observe(record) {
  seen.push(record);
  out(record);
  wake();
}

function matches(record, step) {
  const type = step.type ?? "event";
  return record.type === type && (step.name === undefined || record.name === step.name);
}

async function expect(step, index) {
  const count = step.count ?? 1;
  const deadline = Date.now() + (step.timeout ?? 5000);
  for (;;) {
    if (seen.filter((r) => matches(r, step)).length >= count) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      fail("timeout", { step: index, op: "expect", want: { type: step.type ?? "event", name: step.name, count } }, 2);
    }
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

const namespace = scenario.namespace ?? "/";
const base = scenario.url.replace(/\/+$/, "");
const socket = io(base + (namespace === "/" ? "/" : namespace), {
  path: scenario.path ?? "/socket.io/",
  transports: scenario.transports ?? ["polling", "websocket"],
  query: scenario.query ?? {},
  auth: scenario.auth ?? {},
  reconnection: false,
  forceNew: true,
  ...(scenario.options ?? {}),
});

socket.on("connect", () => observe({ type: "connect", id: socket.id, recovered: socket.recovered ?? false }));
socket.on("connect_error", (err) =>
  observe({ type: "connect_error", message: err.message, data: err.data === undefined ? null : encode(err.data) }),
);
socket.on("disconnect", (reason) => observe({ type: "disconnect", reason }));
socket.onAny((name, ...args) => {
  const last = args[args.length - 1];
  const ack = typeof last === "function" ? args.pop() : null;
  observe({ type: "event", name, args: encode(args), ack: ack !== null });
  if (ack) {
    const reply = scenario.acks?.[name];
    ack(...(reply === undefined ? args : decode(reply)));
  }
});

function emitWithAck(step, index) {
  const args = decode(step.args ?? []);
  return new Promise((resolve) => {
    socket.timeout(step.timeout ?? 5000).emit(step.event, ...args, (err, ...reply) => {
      if (err) fail("timeout", { step: index, op: "emitWithAck", event: step.event }, 2);
      observe({ type: "ack", event: step.event, args: encode(reply) });
      resolve();
    });
  });
}

async function run() {
  const steps = scenario.steps ?? [];
  for (const [index, step] of steps.entries()) {
    switch (step.op) {
      case "expect":
        await expect(step, index);
        break;
      case "emit":
        socket.emit(step.event, ...decode(step.args ?? []));
        break;
      case "emitWithAck":
        await emitWithAck(step, index);
        break;
      case "disconnect":
        socket.disconnect();
        break;
      case "connect":
      case "reconnect":
        if (step.query !== undefined) socket.io.opts.query = step.query;
        if (step.auth !== undefined) socket.auth = step.auth;
        socket.connect();
        break;
      case "cut":
        socket.io.engine.close();
        break;
      case "wait":
        await new Promise((resolve) => setTimeout(resolve, step.ms ?? 0));
        break;
      default:
        fail("error", { message: `unknown op ${JSON.stringify(step.op)} in step ${index}` }, 1);
    }
  }
  // close quietly, so that "done" is always the last line
  socket.removeAllListeners();
  socket.offAny();
  socket.disconnect();
  out({ type: "done" });
  process.exit(0);
}

setTimeout(() => fail("timeout", { op: "scenario", timeout: scenario.timeout ?? 30000 }, 2), scenario.timeout ?? 30000);
run().catch((err) => fail("error", { message: String(err?.stack ?? err) }, 1));
