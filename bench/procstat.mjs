// /proc sampling and statistics for the benchmark driver (bench/driver.mjs).
//
// Owns: reading a server's process tree CPU time (utime+stime from /proc/PID/stat) and RSS (VmRSS from
// /proc/PID/status), the machine's busy CPU time (/proc/stat), the driver's own CPU, measurement windows,
// waiting for a server to go quiet, and latency percentiles.
// Must not know: Socket.IO, workloads, or how servers are started.
import fs from "node:fs";
import { performance } from "node:perf_hooks";

export const now = () => performance.now();
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the server process tree, read from /proc --------------------------------------------------------------

export function readStat(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

export function processTree(root) {
  const children = new Map();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(name);
    if (st === null) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(name));
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop();
    out.push(pid);
    for (const c of children.get(pid) ?? []) todo.push(c);
  }
  return out;
}

export function serverCpuSeconds(root, clkTck) {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / clkTck;
}

export function serverRssKb(root) {
  let kb = 0;
  for (const pid of processTree(root)) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) kb += Number(m[1]);
    } catch {
      // the process ended between listing and reading
    }
  }
  return kb;
}

// Busy CPU-seconds of the whole machine (all CPUs), to tell how much else ran during a window.
export function machineBusySeconds(clkTck) {
  try {
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return (f.slice(0, 8).reduce((a, b) => a + b, 0) - idle) / clkTck;
  } catch {
    return NaN;
  }
}

export function sample(root, clkTck) {
  const self = process.cpuUsage();
  return {
    t: now(),
    cpu: serverCpuSeconds(root, clkTck),
    self: (self.user + self.system) / 1e6,
    rss: serverRssKb(root),
    machine: machineBusySeconds(clkTck),
  };
}

export function windowOf(a, b) {
  const elapsed = (b.t - a.t) / 1000;
  const serverCpu = b.cpu - a.cpu;
  const driverCpu = b.self - a.self;
  return {
    elapsed_s: round(elapsed, 3),
    server_cpu_s: round(serverCpu, 3),
    server_cpu_util: round(serverCpu / elapsed, 3),
    driver_cpu_s: round(driverCpu, 3),
    driver_cpu_util: round(driverCpu / elapsed, 3),
    // CPU used by anything else on the machine (in CPUs): well above 0, the figures were disturbed.
    other_cpu_util: round((b.machine - a.machine - serverCpu - driverCpu) / elapsed, 2),
    // A driver near one full core may be the bottleneck: its throughput figures are then a lower bound.
    driver_bound: driverCpu / elapsed > 0.9,
  };
}

// Waits until the server has been (almost) idle for a moment: background work such as passivation done.
export async function quiesce(root, clkTck, maxMs, stepMs = 250, idleShare = 0.03) {
  const deadline = now() + maxMs;
  let prev = serverCpuSeconds(root, clkTck);
  while (now() < deadline) {
    await sleep(stepMs);
    const cur = serverCpuSeconds(root, clkTck);
    if (cur - prev <= (idleShare * stepMs) / 1000 + 1e-9) return true;
    prev = cur;
  }
  return false;
}

// ---- statistics --------------------------------------------------------------------------------------------

export function round(x, digits = 2) {
  if (!Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function latencyStats(samples) {
  if (samples.length === 0) return { p50_ms: null, p99_ms: null, max_ms: null, mean_ms: null };
  const a = Float64Array.from(samples).sort();
  const pick = (p) => a[Math.min(a.length - 1, Math.floor(p * a.length))];
  let sum = 0;
  for (const x of a) sum += x;
  return {
    p50_ms: round(pick(0.5), 3),
    p99_ms: round(pick(0.99), 3),
    max_ms: round(a[a.length - 1], 3),
    mean_ms: round(sum / a.length, 3),
  };
}

