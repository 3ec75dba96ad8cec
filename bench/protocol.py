"""scripts/bench-protocol: the protocol core benchmark (websocket and polling echo, idle memory).

Owns: the protocol benchmark plan. Each server in turn (ours = `scripts/protocol-test-server`,
python-socketio's AsyncServer on uvicorn, the official Node socket.io) is started alone, pinned to one CPU,
and driven by the same Node driver (official socket.io-client, pinned to the other CPU) with the same
workload:
  1. idle: K websocket connections held open -> RSS delta / K;
  2. websocket echo: N clients, closed-loop `message` -> `message-back` for T seconds;
  3. polling echo: the same over HTTP long-polling.
Prints a table, then ONE JSON line with the ratios (ours / python-socketio, ours / node) and the raw figures.
Must not know: the internals of any server.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.driver import DriverError, note, run_driver
from bench.report import fmt, ratio
from bench.servers import ROOT, NotAvailable, ServerSpec, pinning_available, running

OURS_DEFAULT = "{python} {root}/scripts/protocol-test-server {port}"


def specs(ours_cmd: str) -> list[ServerSpec]:
    ours_requires = ("{root}/scripts/protocol-test-server", "{python}") if ours_cmd == OURS_DEFAULT else ()
    return [
        ServerSpec("ours", "ours (trio)", ours_cmd, ours_requires),
        ServerSpec(
            "python-socketio",
            "python-socketio + uvicorn",
            "{bench_python} {root}/bench/reference/protocol_py.py {port}",
        ),
        ServerSpec(
            "node",
            "node socket.io",
            "{node} {root}/bench/reference/protocol_node.mjs {port}",
            env={"NODE_ENV": "production"},
        ),
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench-protocol", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small run, under 30 s")
    p.add_argument("--clients", type=int, help="closed-loop clients per echo run (default 50)")
    p.add_argument("--duration", type=float, help="measured seconds per echo run (default 10; quick 2)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds first (default 2; quick 0.5)")
    p.add_argument("--idle", type=int, help="idle connections held (default 1000; quick 100)")
    p.add_argument("--payload-bytes", type=int, default=32, help="size of the echoed string (default 32)")
    p.add_argument(
        "--ours-cmd",
        default=OURS_DEFAULT,
        help="command line of our server, placeholders {port} {python} {root} (default: %(default)s)",
    )
    p.add_argument("--only", help="comma-separated subset of: ours,python-socketio,node")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and driver to separate CPUs")
    p.add_argument("--log-dir", type=Path, default=ROOT / "results" / "tmp" / "logs")
    p.add_argument("--verbose", action="store_true", help="show the driver's progress")
    args = p.parse_args(argv)
    args.clients = args.clients or 50
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0)
    args.idle = args.idle or (100 if args.quick else 1000)
    return args


def bench_server(spec: ServerSpec, args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"label": spec.label}
    try:
        with running(spec, args.log_dir, "protocol", pin=pin) as server:
            out["available"] = True
            out["pid"] = server.pid
            plan: list[tuple[str, str, dict[str, Any]]] = [
                ("idle", "proto_idle", {"count": args.idle, "settle_ms": 500 if args.quick else 1000}),
            ]
            for transport in ("websocket", "polling"):
                plan.append(
                    (
                        transport,
                        "proto_echo",
                        {
                            "transport": transport,
                            "clients": args.clients,
                            "duration_s": args.duration,
                            "warmup_s": args.warmup,
                            "payload_bytes": args.payload_bytes,
                        },
                    )
                )
            for name, scenario, params in plan:
                note(f"bench-protocol: {spec.key}: {name}")
                try:
                    out[name] = run_driver(
                        server, scenario, params, pin=pin, log_path=server.log_path, verbose=args.verbose
                    )
                except DriverError as err:
                    out[name] = {"error": str(err)}
                    note(f"bench-protocol: {spec.key}: {name} failed: {err}")
    except NotAvailable as err:
        out.update(available=False, reason=str(err))
        note(f"bench-protocol: {spec.key}: not available: {err}")
    return out


def metric(results: dict[str, Any], key: str, section: str, name: str) -> float | None:
    value = results.get(key, {}).get(section, {}).get(name)
    return value if isinstance(value, int | float) else None


def summary(results: dict[str, Any], args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "protocol"}
    for transport, short in (("websocket", "ws"), ("polling", "polling")):
        for name in ("rt_per_cpu_s", "rt_per_s"):
            ours = metric(results, "ours", transport, name)
            out[f"{short}_ratio_{name}"] = ratio(ours, metric(results, "python-socketio", transport, name))
            out[f"{short}_ratio_vs_node_{name}"] = ratio(ours, metric(results, "node", transport, name))
    ours_mem = metric(results, "ours", "idle", "rss_per_conn_kb")
    out["idle_mem_ratio"] = ratio(ours_mem, metric(results, "python-socketio", "idle", "rss_per_conn_kb"))
    out["idle_mem_ratio_vs_node"] = ratio(ours_mem, metric(results, "node", "idle", "rss_per_conn_kb"))
    out["quick"] = bool(args.quick)
    out["params"] = {
        "clients": args.clients,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "idle_connections": args.idle,
        "payload_bytes": args.payload_bytes,
        "pinned": pin,
        "client": "socket.io-client 4.8 (Node)",
    }
    out["servers"] = results
    return out


def print_table(results: dict[str, Any]) -> None:
    head = (
        f"{'server':<28}{'transport':<11}{'rt/s':>10}{'rt/cpu-s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'srv cpu':>9}{'drv cpu':>9}"
    )
    print(head)
    print("-" * len(head))
    for key, r in results.items():
        label = r.get("label", key)
        if not r.get("available"):
            print(f"{label:<28}not available: {r.get('reason')}")
            continue
        for transport in ("websocket", "polling"):
            m = r.get(transport, {})
            if "error" in m:
                print(f"{label:<28}{transport:<11}error: {m['error']}")
                continue
            bound = " (driver-bound)" if m.get("driver_bound") else ""
            print(
                f"{label:<28}{transport:<11}{fmt(m.get('rt_per_s')):>10}{fmt(m.get('rt_per_cpu_s')):>10}"
                f"{fmt(m.get('p50_ms')):>9}{fmt(m.get('p99_ms')):>9}"
                f"{fmt(m.get('server_cpu_util')):>9}{fmt(m.get('driver_cpu_util')):>9}{bound}"
            )
        idle = r.get("idle", {})
        if "error" in idle:
            print(f"{label:<28}{'idle':<11}error: {idle['error']}")
        else:
            print(
                f"{label:<28}{'idle':<11}{fmt(idle.get('rss_per_conn_kb'))} KiB RSS per idle connection "
                f"({idle.get('idle_connections')} connections)"
            )
    print()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    pin = not args.no_pin and pinning_available()
    wanted = set(args.only.split(",")) if args.only else None
    results: dict[str, Any] = {}
    for spec in specs(args.ours_cmd):
        if wanted is not None and spec.key not in wanted:
            continue
        results[spec.key] = bench_server(spec, args, pin)
    out = summary(results, args, pin)
    print_table(results)
    for key in ("ws_ratio_rt_per_cpu_s", "polling_ratio_rt_per_cpu_s", "ws_ratio_vs_node_rt_per_cpu_s"):
        print(f"{key}: {fmt(out[key])}")
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
