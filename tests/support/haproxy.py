"""A real HAProxy for tests: Debian's ``haproxy`` in the foreground on a free 127.0.0.1 port, with a
generated configuration in a temporary directory, balancing HTTP and WebSocket traffic over given backends.

Owns: ``HAProxy`` (start, stop) and ``require_haproxy()`` (skip with the install command, or fail when
``CI=true``). Stickiness for Socket.IO's polling transport is a cookie HAProxy inserts (``balance
roundrobin`` + ``cookie SRV insert``); clients must keep cookies (socket.io-client: ``withCredentials``).
Must not know about: the servers behind it or what the tests assert.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tests.support.services import require_executable

__all__ = ["HAProxy", "require_haproxy"]

INSTALL_HINT = "apt-get install -y haproxy (scripts/test does it when run as root)"


def require_haproxy() -> str:
    return require_executable("haproxy", INSTALL_HINT, "/usr/sbin/haproxy")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HAProxy:
    """``with HAProxy([("n1", port1), ...]) as lb: lb.url``."""

    def __init__(self, backends: Sequence[tuple[str, int]]) -> None:
        self.binary = require_haproxy()
        self.backends = list(backends)
        self.port = _free_port()
        self._tempdir = tempfile.TemporaryDirectory(prefix="haproxy-test-")
        self.config_path = Path(self._tempdir.name) / "haproxy.cfg"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(
            f"    server {name} 127.0.0.1:{port} cookie {name}" for name, port in self.backends
        )
        return f"""global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 60s
frontend sio
    bind 127.0.0.1:{self.port}
    default_backend nodes
backend nodes
    balance roundrobin
    cookie SRV insert indirect nocache
{servers}
"""

    def start(self, timeout: float = 10.0) -> None:
        self.config_path.write_text(self.config())
        log = Path(self._tempdir.name) / "haproxy.log"
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                [self.binary, "-db", "-f", str(self.config_path)], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self._proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"haproxy did not listen on {self.port}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> HAProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._tempdir.cleanup()
