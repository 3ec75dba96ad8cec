"""``supervisor serve`` as a subprocess for the gateway's end-to-end tests.

Owns: ``ServerProcess``: starting the real command (the ``supervisor`` console script next to the test's
interpreter) on 127.0.0.1 with an ephemeral port, waiting for its "listening on" line, stopping it with
SIGTERM (graceful) or SIGKILL (crash), and restarting it on the same port and SQLite file. Its logs go to a
file in the test's temporary directory (shown when a test fails to start it). Must not know about any
client, or what the tests assert.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["REPO_ROOT", "ServerProcess"]

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"Session Supervisor listening on (http://[^:\s]+:(\d+))")


def supervisor_command() -> list[str]:
    script = Path(sys.executable).with_name("supervisor")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from server.cli.main import main; main()"]


class ServerProcess:
    """``with ServerProcess(tmp_path, "--close-delay", "0.5") as server: server.url``.

    The store is ``sqlite:///<workdir>/supervisor.db`` (kept across restarts) unless ``store`` names
    another URL; ``args`` are extra ``supervisor serve`` options.
    """

    def __init__(
        self, workdir: Path, *args: str, start_timeout: float = 30.0, store: str | None = None,
        db: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.args: Sequence[str] = args
        self.start_timeout = start_timeout
        self.db = db if db is not None else workdir / "supervisor.db"
        self.store = store or f"sqlite:///{self.db}"
        self.log_path = workdir / "server.log"
        self.port = 0
        self.url = ""
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (to look for its descendants in /proc)."""
        return None if self._proc is None else self._proc.pid

    def pause(self) -> None:
        """SIGSTOP (a stalled process: its sockets stay open)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("server already running")
        cmd = [
            *supervisor_command(), "serve",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--store", self.store,
            "--data-dir", str(self.workdir / "data"),
            "--log-format", "json",
            *self.args,
        ]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
        }
        env.pop("SUPERVISOR_API_KEY", None)
        log = self.log_path.open("a")
        try:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=self.workdir
            )
        finally:
            log.close()
        self._proc = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            line = proc.stdout.readline()  # the line is printed once the port is bound
            match = LISTENING.search(line)
            if match:
                self.url, self.port = match.group(1), int(match.group(2))
                self.starts += 1
                return
            if not line or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"supervisor serve did not start (exit code {proc.poll()}); log:\n{self.log_tail()}"
                )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit; returns the exit code (SIGKILL: -9)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def restart(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop with ``sig`` and start again on the same port and database; returns the exit code."""
        code = self.stop(sig)
        self.start()
        return code

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
