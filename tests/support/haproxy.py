"""A real HAProxy for tests: Debian's ``haproxy`` in the foreground on a free 127.0.0.1 port, with a
generated configuration in a temporary directory, balancing HTTP and WebSocket traffic over given backends.

Owns: ``HAProxy`` (start, stop; the process handling is ``tests.support.process.ServiceProcess``'s) and
``require_haproxy()`` (skip with the install command, or fail when ``CI=true``). Stickiness for
Socket.IO's polling transport is a cookie HAProxy inserts (``balance roundrobin`` + ``cookie SRV
insert``); clients must keep cookies (socket.io-client: ``withCredentials``). Must not know about: the
servers behind it or what the tests assert.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.support.process import ServiceProcess, free_port
from tests.support.services import require_executable

__all__ = ["HAProxy", "require_haproxy"]

INSTALL_HINT = "apt-get install -y haproxy (scripts/test does it when run as root)"


def require_haproxy() -> str:
    return require_executable("haproxy", INSTALL_HINT, "/usr/sbin/haproxy")


class HAProxy(ServiceProcess):
    """``with HAProxy([("n1", port1), ...]) as lb: lb.url``."""

    name = "haproxy"

    def __init__(self, backends: Sequence[tuple[str, int]]) -> None:
        super().__init__()
        self.binary = require_haproxy()
        self.backends = list(backends)
        self.port = free_port(avoid=())
        self._tempdir = tempfile.TemporaryDirectory(prefix="haproxy-test-")
        self.config_path = Path(self._tempdir.name) / "haproxy.cfg"
        self._log = Path(self._tempdir.name) / "haproxy.log"

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
        with self._log.open("wb") as out:
            self._proc = subprocess.Popen(
                [self.binary, "-db", "-f", str(self.config_path)], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
            )
        self._wait_ready(self._listens, timeout)

    def _listens(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        self.kill()

    def close(self) -> None:
        self.kill()
        self._tempdir.cleanup()
