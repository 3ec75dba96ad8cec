"""scripts/bench-actors --quick runs and ends with one JSON object carrying the promised keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench-actors"


def test_bench_actors_quick() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True,
                          timeout=120, check=True)
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    for key in ("rss_bytes_per_idle_actor", "mailbox_msgs_per_s", "passivate_rehydrate_cycles_per_s",
                "mailbox_msgs_per_s_1000_actors", "act_msgs_per_s"):
        assert isinstance(result[key], int) and result[key] > 0, key
    assert result["quick"] is True
    assert result["shell_passivate_rehydrate_cycles_per_s"] > 0
    assert isinstance(result["rss_bytes_per_live_shell_session"], int)
