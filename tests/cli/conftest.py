"""A real ``supervisor serve`` subprocess (once per module) and helpers to run the real CLI against it."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from server.client import open_client

LISTENING = re.compile(r"Session Supervisor listening on (http://\S+)")
STARTUP_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERVISOR_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class LineReader:
    """Read a subprocess's stdout line by line with a deadline (no threads: select on the pipe)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._buffer = b""

    def readline(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line within {timeout} s (have {self._buffer!r})")
            ready, _, _ = select.select([self._fd], [], [], left)
            if ready:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    raise EOFError(f"stdout closed (have {self._buffer!r})")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()


@dataclass
class Server:
    url: str
    data_dir: Path
    workdir: Path  # holds data_dir as ./data: the CLI's default --data-dir finds the token from here
    proc: subprocess.Popen[bytes]
    banner: list[str]

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_many(server: Server, commands: list[list[str]], *, url: str | None = None) -> list[Result]:
    """Run several independent CLI commands at once (each a process; the machine has cores to spare)."""
    procs = [
        subprocess.Popen(
            cli_command(*args, "--url", url or server.url), cwd=server.workdir, env=clean_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for args in commands
    ]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
        results.append(Result(proc.returncode, stdout, stderr))
    return results


def post_message(server: Server, session_id: str, text: str) -> int:
    """Setup without spawning the CLI: send one message as a client and wait for the agent's echo."""

    async def main() -> int:
        async with open_client(server.url, query={"conversation_id": session_id}, reconnect=False) as client:
            ack = await client.call("oh_user_action", {"action": "message", "args": {"content": text}})
            own: int = ack["id"]
            with trio.fail_after(20):
                async for event in client.events():
                    payload = event.args[0] if event.args else None
                    if isinstance(payload, dict) and payload.get("source") == "agent" and payload["id"] > own:
                        return own
        raise AssertionError("no echo")

    return trio.run(main)


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "server.cli", *args]


def run_cli(server: Server, *args: str, url: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m server.cli ARGS --url URL`` from the server's workdir (default data dir: ./data)."""
    done = subprocess.run(
        cli_command(*args, "--url", url or server.url),
        cwd=server.workdir, env=env or clean_env(), capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def free_port() -> int:
    """A port nothing listens on (bound then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("cli")
    data_dir = workdir / "data"
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        cli_command("serve", "--port", "0", "--data-dir", str(data_dir),
                    "--store", f"sqlite:///{workdir / 'sessions.db'}", "--log-format", "json",
                    "--close-delay", "never"),
        cwd=workdir, env=clean_env(), stdout=subprocess.PIPE, stderr=log,
    )
    try:
        reader = LineReader(proc)
        banner = [reader.readline(STARTUP_TIMEOUT)]
        match = LISTENING.search(banner[0])
        assert match, banner
        banner += [reader.readline(), reader.readline()]
        yield Server(match.group(1), data_dir, workdir, proc, banner)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
