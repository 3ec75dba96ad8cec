"""``scripts/soak`` for one minute (marked slow: about 70 s): kill -9 every few seconds under a hundred
clients, a flooder in the second half, and the soak's own proof (exactly-once storage of acknowledged
actions, contiguous ids, every client saw every event once, flat RSS per session) must hold.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.gateway.server_process import REPO_ROOT


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_soak_for_60_seconds_proves_exactly_once_through_kill_9() -> None:
    cmd = [sys.executable, "-m", "bench.soak", "--minutes", "1", "--clients", "100", "--sessions", "25",
           "--kill-every", "5", "--flood"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=280, cwd=REPO_ROOT)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, (done.stdout[-2000:], done.stderr[-2000:])
    result = json.loads(lines[0])
    assert result["problems"] == [] and result["ok"] is True, result
    assert done.returncode == 0
    assert result["kills"] >= 8, result  # the server really was killed every few seconds
    assert result["acked"] > 1000 and result["flood_acked"] > 0, result
    assert result["connects"] > result["clients"] * 2, result  # clients really disconnected and came back
