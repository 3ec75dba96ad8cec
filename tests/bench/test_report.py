"""Pure tests of the benchmark's result formatting (bench/report.py): ratios, cells, the markdown table."""

from __future__ import annotations

from typing import Any

from bench.report import HEADLINES, dig, fmt, markdown, ratio, ratio_rows


def record(server: str, scenario: str, metrics: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"server": server, "scenario": scenario, "available": metrics is not None, **extra}
    if metrics is not None:
        rec["metrics"] = metrics
    return rec


def test_ratio_is_ours_over_peer_and_none_without_both_figures() -> None:
    assert ratio(30.0, 10.0) == 3.0
    assert ratio(None, 10.0) is None
    assert ratio(5.0, None) is None
    assert ratio(5.0, 0) is None


def test_fmt_groups_large_numbers_and_says_na_for_missing() -> None:
    assert fmt(12345.6) == "12,346"
    assert fmt(1.234) == "1.23"
    assert fmt(0.01234) == "0.0123"
    assert fmt(None) == "n/a"


def test_dig_follows_dotted_paths_and_ignores_non_numbers() -> None:
    metrics = {"rehydrate_latency": {"p99_ms": 7.5}, "driver_bound": True, "name": "x"}
    assert dig(metrics, "rehydrate_latency.p99_ms") == 7.5
    assert dig(metrics, "rehydrate_latency.p50_ms") is None
    assert dig(metrics, "driver_bound") is None
    assert dig(None, "anything") is None


def test_ratio_rows_compare_ours_with_each_peer() -> None:
    records = [
        record("ours", "echo", {"rt_per_cpu_s": 300.0}),
        record("python-socketio", "echo", {"rt_per_cpu_s": 100.0}),
        record("node", "echo", {"rt_per_cpu_s": 600.0}),
    ]
    rows = {(h.scenario, h.path): r for h, r in ratio_rows(records)}
    assert rows[("echo", "rt_per_cpu_s")]["python-socketio"] == 3.0
    assert rows[("echo", "rt_per_cpu_s")]["node"] == 0.5
    assert ("churn", "rss_growth_first_to_last_kb") not in rows  # shown as a figure, never as a ratio


def test_markdown_marks_an_unavailable_server_and_lists_every_headline() -> None:
    records = [
        record("ours", "echo", None, reason="scripts/protocol-test-server is missing"),
        record("python-socketio", "echo", {"rt_per_s": 4000.0}),
        record("node", "echo", {"rt_per_s": 9000.0}),
    ]
    text = markdown(records, {"quick": True}, "latest.png")
    assert "| echo | round trips/s | not available | 4,000 | 9,000 |" in text
    assert "ours / echo: not available: scripts/protocol-test-server is missing" in text
    assert "| connect | connects/s | not run | not run | not run |" in text
    assert text.count("\n| ") >= 2 * len(HEADLINES)
    assert "![ratios](latest.png)" in text
