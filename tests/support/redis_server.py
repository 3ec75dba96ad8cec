"""A real ``redis-server`` for tests: its own free port on 127.0.0.1, its own temporary data directory.

Owns: starting Debian's ``redis-server`` with durable settings (``appendonly yes``, ``appendfsync always``,
``maxmemory-policy noeviction``, no RDB snapshots), waiting until it answers PING, SIGKILL / SIGSTOP /
SIGCONT / restart on the same port and directory (for fault tests: the AOF is replayed on restart; the
process handling is ``tests.support.process.ServiceProcess``'s), ``query`` / ``info`` (RESP replies), and
``require_redis_server()`` (skip with the install command, or fail when ``CI=true``). Never uses the
default port 6379. Must not know about: coredis, the store, or what the tests assert.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

from tests.support.process import ServiceProcess, free_port
from tests.support.services import require_executable

__all__ = ["RedisServer", "require_redis_server"]

INSTALL_HINT = "apt-get install -y redis-server (scripts/test does it when run as root)"


def require_redis_server() -> str:
    """The path of ``redis-server``; skips the test when it is missing (fails instead under ``CI=true``)."""
    return require_executable("redis-server", INSTALL_HINT)


def _ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _resp_command(words: tuple[str | None, ...]) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = (word or "").encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(reader: BinaryIO) -> object:
    line = reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        if length < 0:
            return None
        data = reader.read(length + 2)
        return data[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(reader) for _ in range(count)]
    raise RuntimeError(f"unexpected reply {line!r}")


class RedisServer(ServiceProcess):
    """``with RedisServer() as redis: redis.url`` -> ``redis://127.0.0.1:<port>/0``."""

    name = "redis-server"

    def __init__(self, *, password: str | None = None, directory: Path | None = None) -> None:
        super().__init__()
        self.binary = require_redis_server()
        self.password = password
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="redis-test-")
            directory = Path(self._tempdir.name)
        self.directory = directory
        self.port = free_port()  # never the default port, whatever the kernel hands out

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            raise RuntimeError("redis-server already running")
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--maxmemory-policy", "noeviction",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_ready(self._answers, timeout)

    def _answers(self) -> bool:
        if self.password is None:
            return _ping(self.port)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = sock.recv(256)
                    if not chunk:
                        return False
                    reply += chunk
                return b"+PONG" in reply
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        """Send one command (inline protocol) and return the raw first reply line, e.g. ``FLUSHALL``."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            prefix = f"AUTH {self.password}\r\n".encode() if self.password else b""
            sock.sendall(prefix + " ".join(words).encode() + b"\r\n")
            reply = b""
            while reply.count(b"\r\n") < (2 if self.password else 1):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply.split(b"\r\n")[-2]

    def query(self, *words: str) -> object:
        """Send one command (RESP, so arguments may hold spaces) and return its parsed reply: bytes for
        bulk and simple strings, int, list, or None; an error reply raises ``RuntimeError``."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            reader = sock.makefile("rb")
            commands: list[tuple[str | None, ...]] = [("AUTH", self.password)] if self.password else []
            commands.append(words)
            sock.sendall(b"".join(_resp_command(command) for command in commands))
            replies = [_read_reply(reader) for _ in commands]
            reader.close()
        return replies[-1]

    def info(self, section: str) -> dict[str, str]:
        """``INFO section`` as a mapping (``info("stats")["total_commands_processed"]``)."""
        reply = self.query("INFO", section)
        assert isinstance(reply, bytes), reply
        pairs = (line.split(":", 1) for line in reply.decode().splitlines() if ":" in line)
        return {key: value for key, value in pairs}

    def _log_tail(self) -> str:
        try:
            return (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def restart(self) -> None:
        """SIGKILL, then start again on the same port and directory (the AOF is loaded)."""
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
