"""Start and stop the python-socketio reference server (``pysio_server.py``) as a subprocess for tests.

Owns: spawning the script with the venv's interpreter on 127.0.0.1 (ephemeral port unless told), reading
the ``PORT <n>`` line, restarting on the same port, pausing (SIGSTOP/SIGCONT) to simulate a frozen server,
and killing it. Must not know about: any client, or what the tests assert.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

__all__ = ["PySioServer"]

SCRIPT = Path(__file__).with_name("pysio_server.py")


class PySioServer:
    """``with PySioServer(ping_interval=0.3) as server: server.url`` -> ``http://127.0.0.1:<port>``."""

    def __init__(
        self,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = 1_000_000,
        port: int = 0,
    ) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_payload
        self.port = port
        self._proc: subprocess.Popen[str] | None = None

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
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # in case a test left it paused
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()

    def restart(self) -> None:
        """Kill the server and start a new one on the same port (its sessions are gone)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server process: it stops pinging and answering, its sockets stay open."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> PySioServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
