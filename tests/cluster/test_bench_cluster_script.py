"""scripts/bench-cluster --quick starts three nodes and a redis-server, ends by itself, and prints one JSON
object with every promised figure (a smoke test: its numbers mean nothing on a shared machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.redis_server import require_redis_server

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench-cluster"


def test_bench_cluster_quick() -> None:
    require_redis_server()
    assert os.access(SCRIPT, os.X_OK)
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("routed_rtt_ms_p50", "routed_rtt_ms_p99", "routed_loaded_ms_p50", "routed_loaded_ms_p99",
                "routed_loaded_per_s", "routed_floor_ms_p50", "routed_floor_ms_p99", "events_per_s_redis",
                "events_per_s_sqlite", "replay_events_per_s", "takeover_s_p50", "takeover_s_max"):
        assert isinstance(result[key], int | float) and result[key] > 0, key
    for part in ("rtt", "loaded", "floor"):
        assert result[f"routed_{part}_ms_p50"] <= result[f"routed_{part}_ms_p99"], part
    assert result["takeover_s_max"] < result["lease_ttl_s"] + 1.0
    assert result["quick"] is True


def test_bench_cluster_refuses_an_unknown_part() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "routed,nonsense"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown parts nonsense" in done.stderr
