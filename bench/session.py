"""scripts/bench: the session workload benchmark (connect, echo, moderate, moderate-polling, churn, sessions).

Owns: the plan of scripts/bench. Each server (ours = `supervisor serve --agent none` on SQLite, the
python-socketio reference on uvicorn, the Node socket.io reference; see bench/reference/) is started fresh for
every scenario, alone, pinned to one CPU, and driven by the same Node driver (official socket.io-client) on
the other CPU with the same parameters. Writes one JSON line per scenario and server (stdout and
<out>/latest.jsonl), a markdown table of ratios (<out>/latest.md) and a chart (<out>/latest.png).
Must not know: the internals of any server, or how the driver measures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench import admin_ui
from bench.driver import DriverError, note, run_driver
from bench.report import chart, fmt, markdown, ratio_rows
from bench.servers import ROOT, NotAvailable, ServerSpec, pinning_available, running

OURS_DEFAULT = (
    "{venv}/bin/supervisor serve --agent none --port {port} --store sqlite:///{tmp}/bench.db "
    "--close-delay {close_delay}"
)
SCENARIOS = ("connect", "echo", "moderate", "moderate-polling", "churn", "sessions")
# The driver scenario behind each of ours, and its fixed parameters. "echo" saturates (every connection
# sends); "moderate" is how agent UIs are used: one connection per conversation sends, the others watch.
DRIVER_SCENARIO = {"moderate": "echo", "moderate-polling": "echo"}
FIXED_PARAMS: dict[str, dict[str, Any]] = {
    "moderate": {"senders_per_conversation": 1, "transport": "websocket"},
    "moderate-polling": {"senders_per_conversation": 1, "transport": "polling"},
}


def specs(ours_cmd: str) -> list[ServerSpec]:
    return [
        ServerSpec(
            "ours", "ours (trio)", ours_cmd, ("{venv}/bin/supervisor",) if ours_cmd == OURS_DEFAULT else ()
        ),
        ServerSpec(
            "python-socketio",
            "python-socketio + uvicorn",
            "{bench_python} {root}/bench/reference/session_py.py {port}",
        ),
        ServerSpec(
            "node",
            "node socket.io",
            "{node} {root}/bench/reference/session_node.mjs {port}",
            env={"NODE_ENV": "production"},
        ),
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small figures everywhere, under 2 minutes in all")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of %(default)s")
    p.add_argument("--only", help="comma-separated subset of: ours,python-socketio,node")
    p.add_argument("--out", type=Path, default=ROOT / "results", help="where latest.{jsonl,md,png} go")
    p.add_argument(
        "--ours-cmd",
        default=OURS_DEFAULT,
        help="command line of our server; placeholders {port} {venv} {python} {root} {tmp} {close_delay} "
        "(default: %(default)s)",
    )
    p.add_argument("--close-delay", type=float, default=1.0, help="our server's --close-delay, seconds")
    p.add_argument(
        "--admin-ui",
        action="store_true",
        help="also run our server with --admin-ui (nobody watching, then one admin watching): its cost",
    )
    p.add_argument("--connections", type=int, help="connect: connections (default 2000; quick 200)")
    p.add_argument(
        "--conversations", type=int, help="echo, moderate*: conversations K (default 50; quick 5)"
    )
    p.add_argument(
        "--per-conversation", type=int, help="echo, moderate*: connections per conversation M (default 4)"
    )
    p.add_argument("--duration", type=float, help="echo, moderate*: measured seconds (default 10; quick 2)")
    p.add_argument(
        "--warmup", type=float, help="echo, moderate*: unmeasured seconds first (default 2; quick 0.5)"
    )
    p.add_argument("--churn-rounds", type=int, default=3, help="churn: rounds on one server process")
    p.add_argument("--churn-round-s", type=float, help="churn: seconds per round (default 10; quick 1.5)")
    p.add_argument("--churn-workers", type=int, help="churn: concurrent loops (default 20; quick 10)")
    p.add_argument("--sessions", type=int, help="sessions: sessions (default 10000; quick 300)")
    p.add_argument("--concurrency", type=int, default=100, help="connects in flight (connect, sessions)")
    p.add_argument(
        "--passivation-wait",
        type=float,
        help="sessions: seconds to wait for passivation "
        "(ours only; default close delay + 2), then until the server is idle (max 30 s)",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin server and driver to separate CPUs")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    p.add_argument("--verbose", action="store_true", help="show the driver's progress")
    args = p.parse_args(argv)
    q = args.quick
    args.connections = args.connections or (200 if q else 2000)
    args.conversations = args.conversations or (5 if q else 50)
    args.per_conversation = args.per_conversation or 4
    args.duration = args.duration or (2.0 if q else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if q else 2.0)
    args.churn_round_s = args.churn_round_s or (1.5 if q else 10.0)
    args.churn_workers = args.churn_workers or (10 if q else 20)
    args.sessions = args.sessions or (300 if q else 10000)
    if args.passivation_wait is None:
        args.passivation_wait = args.close_delay + 2.0
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def scenario_params(name: str, server_key: str, args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """The driver parameters of one scenario, and its time limit in seconds."""
    settle = 500 if args.quick else 1000
    if name == "connect":
        return {
            "count": args.connections,
            "concurrency": args.concurrency,
            "settle_ms": settle,
        }, 120 + args.connections / 20
    if name in ("echo", "moderate", "moderate-polling"):
        return (
            {
                "conversations": args.conversations,
                "per_conversation": args.per_conversation,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                **FIXED_PARAMS.get(name, {}),
            },
            60 + args.duration + args.warmup,
        )
    if name == "churn":
        return (
            {
                "rounds": args.churn_rounds,
                "round_s": args.churn_round_s,
                "workers": args.churn_workers,
                "settle_ms": settle,
            },
            60 + args.churn_rounds * (args.churn_round_s + 1),
        )
    passivation = args.passivation_wait if server_key == "ours" else 0.0
    return (
        {
            "count": args.sessions,
            "concurrency": args.concurrency,
            "settle_ms": settle,
            "passivation_wait_s": passivation,
            "quiesce_max_s": 30,
        },
        180 + passivation + args.sessions / 10,
    )


def run_scenario(spec: ServerSpec, name: str, args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    params, limit = scenario_params(name, spec.key, args)
    record: dict[str, Any] = {
        "bench": "session",
        "scenario": name,
        "server": spec.key,
        "label": spec.label,
        "quick": bool(args.quick),
        "params": params,
    }
    note(f"bench: {spec.key}: {name}")
    try:
        with (
            running(spec, args.out / "tmp" / "logs", name, close_delay=args.close_delay, pin=pin) as server,
            admin_ui.watching(spec, server, server.log_path),
        ):
            record["available"] = True
            try:
                record["metrics"] = run_driver(
                    server,
                    DRIVER_SCENARIO.get(name, name),
                    params,
                    pin=pin,
                    time_limit_s=limit,
                    log_path=server.log_path,
                    verbose=args.verbose,
                )
            except DriverError as err:
                record["error"] = str(err)
                note(f"bench: {spec.key}: {name} failed: {err}")
    except NotAvailable as err:
        record.update(available=False, reason=str(err))
        note(f"bench: {spec.key}: not available: {err}")
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    pin = not args.no_pin and pinning_available()
    wanted = set(args.only.split(",")) if args.only else None
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / "latest.jsonl"
    records: list[dict[str, Any]] = []
    with open(jsonl, "w") as sink:
        slots = specs(args.ours_cmd)
        if args.admin_ui:  # right after ours, selected with it by --only ours
            slots[1:1] = admin_ui.variant_specs(slots[0])
        for spec in slots:
            if wanted is not None and spec.key not in wanted and spec.key.split("-admin-ui")[0] not in wanted:
                continue
            unavailable: dict[str, Any] | None = None
            for name in args.scenarios:
                if unavailable is not None:  # do not retry a server that could not start
                    record = {
                        **unavailable,
                        "scenario": name,
                        "params": scenario_params(name, spec.key, args)[0],
                    }
                else:
                    record = run_scenario(spec, name, args, pin)
                    if not record.get("available"):
                        unavailable = record
                records.append(record)
                line = json.dumps(record, separators=(",", ":"))
                sink.write(line + "\n")
                sink.flush()
                print(line, flush=True)
    params = {
        "connections": args.connections,
        "echo": f"{args.conversations}x{args.per_conversation} for {args.duration:g}s",
        "moderate": f"{args.conversations}x{args.per_conversation}, one sender each, websocket and polling",
        "churn": f"{args.churn_rounds}x{args.churn_round_s:g}s, {args.churn_workers} workers",
        "sessions": args.sessions,
        "close_delay_s": args.close_delay,
        "pinned": pin,
        "quick": bool(args.quick),
    }
    chart_name = None
    if not args.no_chart:
        chart(records, args.out / "latest.png")
        chart_name = "latest.png"
    (args.out / "latest.md").write_text(markdown(records, params, chart_name) + admin_ui.markdown(records))
    print()
    print("ratios ours / peer (higher-is-better metrics: >1 is better; lower-is-better: <1 is better)")
    for h, r in ratio_rows(records):
        vs_py, vs_node = fmt(r["python-socketio"]), fmt(r["node"])
        print(f"  {h.scenario:<17}{h.label:<45} vs python-socketio {vs_py:>8}   vs node {vs_node:>8}")
    written = [jsonl, args.out / "latest.md"] + ([] if args.no_chart else [args.out / "latest.png"])
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
