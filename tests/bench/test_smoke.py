"""Smoke tests of scripts/bench --quick and scripts/bench-protocol --quick: the output is well-formed.

They run the real tooling (bench venv, npm packages, Node driver, reference servers, and our servers when
they exist) and check only the shape of what it prints and writes, never a speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCES = ("python-socketio", "node")
SERVERS = ("ours", *REFERENCES)
SCENARIOS = ("connect", "echo", "moderate", "moderate-polling", "churn", "sessions")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.js,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]


def run_script(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENCH_SKIP_PROJECT_INSTALL": "1"}  # the project venv is the one running us
    done = subprocess.run(
        [str(ROOT / "scripts" / argv[0]), *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def check_server_slot(record: dict[str, Any]) -> None:
    if record["available"]:
        assert "metrics" in record or isinstance(record.get("error"), str)
    else:
        assert isinstance(record["reason"], str) and record["reason"]


def test_bench_quick_writes_one_record_per_scenario_and_server_and_a_report(tmp_path: Path) -> None:
    done = run_script("bench", "--quick", "--out", str(tmp_path), timeout=600)
    records = [json.loads(line) for line in (tmp_path / "latest.jsonl").read_text().splitlines()]
    assert {(r["scenario"], r["server"]) for r in records} == {(s, k) for s in SCENARIOS for k in SERVERS}
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert printed == records
    by = {(r["scenario"], r["server"]): r for r in records}
    for record in records:
        check_server_slot(record)
    for server in REFERENCES:  # the references are ours to keep working: they must produce figures
        for scenario in SCENARIOS:
            metrics = by[(scenario, server)].get("metrics")
            assert metrics is not None, by[(scenario, server)]
        assert by[("connect", server)]["metrics"]["connections"] > 0
        assert by[("echo", server)]["metrics"]["round_trips"] > 0
        for scenario, transport in (("moderate", "websocket"), ("moderate-polling", "polling")):
            moderate = by[(scenario, server)]["metrics"]
            assert moderate["round_trips"] > 0 and moderate["transport"] == transport
            assert moderate["senders_per_conversation"] == 1  # one sender, the others watch
            # every connection of the conversation gets each event (counted in the window: edges differ)
            assert moderate["deliveries"] >= 0.9 * moderate["round_trips"] * moderate["per_conversation"]
        assert len(by[("churn", server)]["metrics"]["rounds"]) == 3
        assert all(isinstance(r["rss_after_kb"], int) for r in by[("churn", server)]["metrics"]["rounds"])
        sessions = by[("sessions", server)]["metrics"]
        assert sessions["sessions"] > 0 and sessions["rehydrated"] > 0
        assert sessions["rss_per_passivated_session_kb"] is None  # passivation means nothing for a reference
    report = (tmp_path / "latest.md").read_text()
    assert "## Ratios: ours / peer" in report
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_protocol_quick_ends_with_one_json_line_of_ratios() -> None:
    done = run_script("bench-protocol", "--quick", timeout=300)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("ws_ratio_rt_per_cpu_s", "polling_ratio_rt_per_cpu_s", "ws_ratio_vs_node_rt_per_cpu_s"):
        assert key in summary
        assert summary[key] is None or summary[key] > 0
    assert set(summary["servers"]) == set(SERVERS)
    for server in REFERENCES:
        slot = summary["servers"][server]
        assert slot["available"], slot
        assert slot["websocket"]["round_trips"] > 0 and slot["polling"]["round_trips"] > 0
        assert slot["idle"]["idle_connections"] > 0
    ours = summary["servers"]["ours"]
    if not ours["available"]:
        assert summary["ws_ratio_rt_per_cpu_s"] is None and ours["reason"]
