"""What the helpers that run one real service process for the tests share (redis-server, haproxy, the
python-socketio reference server).

Owns: ``ServiceProcess`` (the process handle; ``running``; waiting until the service is ready, failing
with its log if it exits first; SIGSTOP/SIGCONT; SIGKILL, even of a paused process; ``with`` support) and
``free_port``. Must not know about any particular service: subclasses say how to start it and when it is
ready.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

__all__ = ["ServiceProcess", "free_port"]


def free_port(*, avoid: tuple[int, ...] = (6379,)) -> int:
    """A free TCP port on 127.0.0.1, never one of ``avoid`` (the services' default ports)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


class ServiceProcess:
    """Subclasses implement ``start`` (``self._proc = subprocess.Popen(...)``, then ``_wait_ready``) and
    may extend ``_reaped`` (after the process ended) and ``close`` (temporary directories)."""

    name = "service"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[Any] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        raise NotImplementedError

    def _log_tail(self) -> str:
        return "(no log)"

    def _wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        """Until ``ready()``; raises (with the log's tail) if the process exits or ``timeout`` passes."""
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._proc = None
                self._reaped(proc)
                raise RuntimeError(f"{self.name} exited with {proc.returncode}: {self._log_tail()}")
            if ready():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"{self.name} was not ready within {timeout} s: {self._log_tail()}")

    def pause(self) -> None:
        """SIGSTOP: the process stops answering; its sockets stay open."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (after a SIGCONT, in case a test left it paused) and wait; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)
        self._reaped(proc)

    def _reaped(self, proc: subprocess.Popen[Any]) -> None:
        """The process has ended (its pipes may be closed here)."""

    def close(self) -> None:
        self.kill()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
