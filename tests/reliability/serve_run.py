"""Run ``supervisor serve`` to a failure: its exit code and the one line it printed on stderr.

Owns: ``serve_fails`` (a real subprocess with ``--log-level warning``, so that a failure to start prints
exactly its ``error: ...`` line). Knows nothing of what the tests assert.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.gateway.server_process import REPO_ROOT, supervisor_command

__all__ = ["serve_fails", "supervisor_env"]


def supervisor_env() -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    env.pop("SUPERVISOR_API_KEY", None)
    return env


def serve_fails(cwd: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    """``supervisor serve --port 0 --log-level warning ARGS`` must exit by itself; (exit code, the line)."""
    port = [] if "--port" in args else ["--port", "0"]
    cmd = [*supervisor_command(), "serve", *port, "--log-level", "warning", "--log-format", "json", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=supervisor_env())
    lines = done.stderr.splitlines()
    assert len(lines) == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    return done.returncode, lines[0]
