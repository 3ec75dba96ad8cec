"""Result formatting: numbers, ratios, the markdown table and the PNG chart of scripts/bench.

Owns: which figures are the headline of each scenario (and whether higher or lower is better), the ratio
ours / peer, results/latest.md and results/latest.png.
Must not know: how figures were measured or how servers run.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PEERS = ("python-socketio", "node")
SERVERS = ("ours", *PEERS)


@dataclass(frozen=True)
class Headline:
    scenario: str
    path: str  # dotted path into the scenario's metrics
    label: str
    higher_is_better: bool
    compare: bool = True  # False: shown as a figure only (a ratio would mean nothing)


HEADLINES = (
    Headline("connect", "connects_per_s", "connects/s", True),
    Headline("connect", "connects_per_cpu_s", "connects per server CPU-s", True),
    Headline("connect", "connect_latency.p99_ms", "connect p99 ms", False),
    Headline("connect", "rss_per_conn_kb", "RSS KiB per idle connection", False),
    Headline("echo", "rt_per_s", "round trips/s", True),
    Headline("echo", "rt_per_cpu_s", "round trips per server CPU-s", True),
    Headline("echo", "p50_ms", "p50 ms", False),
    Headline("echo", "p99_ms", "p99 ms", False),
    Headline("echo", "max_ms", "max ms", False),
    Headline("echo", "deliveries_per_s", "fan-out deliveries/s", True),
    Headline("moderate", "rt_per_s", "round trips/s (1 sender of 4)", True),
    Headline("moderate", "rt_per_cpu_s", "round trips per server CPU-s (1 sender of 4)", True),
    Headline("moderate", "p50_ms", "p50 ms", False),
    Headline("moderate", "p99_ms", "p99 ms", False),
    Headline("moderate-polling", "rt_per_s", "round trips/s (polling, 1 sender of 4)", True),
    Headline("moderate-polling", "rt_per_cpu_s", "round trips per server CPU-s (polling)", True),
    Headline("moderate-polling", "p99_ms", "p99 ms", False),
    Headline("churn", "cycles_per_s", "cycles/s", True),
    Headline("churn", "rss_growth_first_to_last_kb", "RSS growth round 1 -> last, KiB", False, compare=False),
    Headline("sessions", "create_per_s", "sessions created/s", True),
    Headline("sessions", "rehydrate_per_s", "rehydrated (reconnect + history)/s", True),
    Headline("sessions", "rehydrate_latency.p99_ms", "rehydrate p99 ms", False),
    Headline("sessions", "rss_per_live_session_kb", "RSS KiB per live session (+ its connection)", False),
    Headline("sessions", "rss_per_passivated_session_kb", "RSS KiB per passivated session", False),
)


def ratio(ours: float | None, peer: float | None) -> float | None:
    if ours is None or peer is None or peer == 0:
        return None
    return round(ours / peer, 3)


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def dig(metrics: dict[str, Any] | None, path: str) -> float | None:
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def index(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["scenario"], r["server"]): r for r in records}


def cell(record: dict[str, Any] | None, path: str) -> str:
    if record is None:
        return "not run"
    if not record.get("available"):
        return "not available"
    if "error" in record:
        return "error"
    return fmt(dig(record.get("metrics"), path))


def ratio_rows(
    records: list[dict[str, Any]], mine: str = "ours"
) -> list[tuple[Headline, dict[str, float | None]]]:
    """For each comparable headline: {peer: mine/peer} (None where either side has no figure)."""
    by = index(records)
    rows = []
    for h in HEADLINES:
        if not h.compare:
            continue
        mine_value = dig(by.get((h.scenario, mine), {}).get("metrics"), h.path)
        rows.append(
            (
                h,
                {
                    p: ratio(mine_value, dig(by.get((h.scenario, p), {}).get("metrics"), h.path))
                    for p in SERVERS
                },
            )
        )
    return rows


def markdown(records: list[dict[str, Any]], params: dict[str, Any], chart_name: str | None) -> str:
    by = index(records)
    lines = [
        "# Session workload benchmark",
        "",
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} CPUs; "
        "every server alone, pinned to one CPU, driven by the official Node socket.io-client on the other.",
        "",
        "Parameters: " + ", ".join(f"`{k}={v}`" for k, v in params.items()),
        "",
        "## Figures",
        "",
        "| scenario | metric | ours | python-socketio | node |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for h in HEADLINES:
        cells = " | ".join(cell(by.get((h.scenario, s)), h.path) for s in SERVERS)
        lines.append(f"| {h.scenario} | {h.label} | {cells} |")
    lines += [
        "",
        "## Ratios: ours / peer",
        "",
        "A ratio above 1 is better for ours when higher is better, below 1 when lower is better.",
        "",
        "| scenario | metric | better | ours / python-socketio | ours / node |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for h, r in ratio_rows(records):
        better = "higher" if h.higher_is_better else "lower"
        vs_py, vs_node = fmt(r["python-socketio"]), fmt(r["node"])
        lines.append(f"| {h.scenario} | {h.label} | {better} | {vs_py} | {vs_node} |")
    notes = []
    for rec in records:
        if not rec.get("available"):
            notes.append(f"- {rec['server']} / {rec['scenario']}: not available: {rec.get('reason')}")
        elif "error" in rec:
            notes.append(f"- {rec['server']} / {rec['scenario']}: error: {rec['error']}")
        elif (rec.get("metrics") or {}).get("errors"):
            m = rec["metrics"]
            first = m.get("first_error")
            notes.append(f"- {rec['server']} / {rec['scenario']}: {m['errors']} client errors ({first})")
        elif (rec.get("metrics") or {}).get("driver_bound"):
            notes.append(
                f"- {rec['server']} / {rec['scenario']}: driver at a full CPU, throughput is a lower bound"
            )
    notes.append("- Passivation has no meaning for the references: their passivated figures are n/a.")
    lines += ["", "## Notes", "", *notes, ""]
    if chart_name:
        lines += [f"![ratios]({chart_name})", ""]
    return "\n".join(lines)


def chart(records: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars of the advantage of ours over each peer (ratio, inverted where lower is better).

    When our server has no figures (not available yet), shows node relative to python-socketio instead, so
    the chart still says something about the references.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours_present = any(r["server"] == "ours" and r.get("available") and "metrics" in r for r in records)
    mine, peers = ("ours", PEERS) if ours_present else ("node", ("python-socketio",))
    labels: list[str] = []
    series: dict[str, list[float]] = {p: [] for p in peers}
    for h, r in ratio_rows(records, mine):
        if all(r[p] is None for p in peers):
            continue
        labels.append(f"{h.scenario}: {h.label}")
        for p in peers:
            value = r[p]
            if value is None or value <= 0:
                series[p].append(float("nan"))
            else:
                series[p].append(value if h.higher_is_better else 1 / value)
    fig, ax = plt.subplots(figsize=(11, 0.45 * max(len(labels), 4) + 1.5))
    height = 0.8 / max(len(peers), 1)
    for i, p in enumerate(peers):
        ys = [k + (i - (len(peers) - 1) / 2) * height for k in range(len(labels))]
        # Bars grow from 1.0 (parity) to the value, rightwards when ours is better.
        ax.barh(ys, [v - 1 for v in series[p]], left=1.0, height=height, label=f"{mine} vs {p}")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    finite = [v for p in peers for v in series[p] if v == v]
    low, high = min([*finite, 0.5]) / 1.3, max([*finite, 2.0]) * 1.3
    ax.set_xlim(low, high)
    ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 4, 10, 25, 100) if low <= t <= high]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}x" for t in ticks])
    ax.minorticks_off()
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"advantage of {mine} (>1: {mine} better; lower-is-better metrics inverted)")
    title = "Session workload: ours vs peers"
    if not ours_present:
        title = "Ours not available: node vs python-socketio"
    ax.set_title(title)
    if labels:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no comparable figures", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
