"""Running the Node load driver (bench/driver.mjs) for one scenario and reading its one JSON result.

Owns: the driver's command line (pinned to its own CPU, raised fd limit), its time limit, and turning its
output into a dict (or a clear error).
Must not know: how servers start or how results are compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.servers import BENCH, DRIVER_CPU, RunningServer, child_setup


class DriverError(Exception):
    """The driver failed or printed no result."""


def run_driver(
    server: RunningServer,
    scenario: str,
    params: dict[str, Any],
    *,
    pin: bool = True,
    time_limit_s: float = 300.0,
    log_path: Path | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    config = {
        "scenario": scenario,
        "url": server.url,
        "path": "/socket.io/",
        "pid": server.pid,
        "clk_tck": os.sysconf("SC_CLK_TCK"),
        "time_limit_s": time_limit_s,
        **params,
    }
    argv = [os.environ.get("NODE", "node"), str(BENCH / "driver.mjs"), json.dumps(config)]
    stderr_target = None if verbose else subprocess.PIPE
    try:
        done = subprocess.run(
            argv,
            cwd=BENCH,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_target,
            timeout=time_limit_s + 15,
            preexec_fn=child_setup(DRIVER_CPU if pin else None),
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise DriverError(f"driver did not end within {time_limit_s + 15:g} s") from err
    err_text = (done.stderr or b"").decode(errors="replace")
    if log_path is not None and err_text:
        with open(log_path, "a") as log:
            log.write(err_text)
    lines = [line for line in done.stdout.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        tail = err_text.strip().splitlines()[-3:]
        raise DriverError(f"driver printed nothing (exit {done.returncode}): {' | '.join(tail)}")
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError as err:
        raise DriverError(f"driver printed no JSON: {lines[-1][:200]}") from err
    if "error" in result:
        raise DriverError(str(result["error"]).splitlines()[0])
    return result


def note(message: str) -> None:
    """Progress for the person running the benchmark (stderr, so stdout stays machine-readable)."""
    print(message, file=sys.stderr, flush=True)
