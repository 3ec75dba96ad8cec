"""Start and stop the python-socketio reference server (``pysio_server.py``) as a subprocess for tests.

Owns: spawning the script with the venv's interpreter on 127.0.0.1 (ephemeral port unless told), reading
the ``PORT <n>`` line, restarting on the same port; pausing (SIGSTOP/SIGCONT, to simulate a frozen server)
and killing it are ``tests.support.process.ServiceProcess``'s. Must not know about: any client, or what
the tests assert.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.process import ServiceProcess

__all__ = ["PySioServer"]

SCRIPT = Path(__file__).with_name("pysio_server.py")


class PySioServer(ServiceProcess):
    """``with PySioServer(ping_interval=0.3) as server: server.url`` -> ``http://127.0.0.1:<port>``."""

    name = "pysio_server"

    def __init__(
        self,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = 1_000_000,
        port: int = 0,
    ) -> None:
        super().__init__()
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_payload
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("server already running")
        cmd = [
            sys.executable,
            str(SCRIPT),
            "--port",
            str(self.port),
            "--ping-interval",
            str(self.ping_interval),
            "--ping-timeout",
            str(self.ping_timeout),
            "--max-payload",
            str(self.max_payload),
        ]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        self._proc = proc
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the script binds before printing, so the port is live once we read it
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"pysio_server did not start (exit code {proc.poll()}, first line {line!r})")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        self.kill()

    def _reaped(self, proc: subprocess.Popen[Any]) -> None:
        if proc.stdout is not None:
            proc.stdout.close()

    def restart(self) -> None:
        """Kill the server and start a new one on the same port (its sessions are gone)."""
        self.stop()
        self.start()
