"""The README's commands and examples, run for real: a README must not promise what the code does not do.

Covers the two commands for a new machine (``scripts/serve`` here; ``scripts/test`` is what runs this very
test), the JavaScript and Python quick-start clients against ``supervisor serve``, and the Socket.IO library
example.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import socketio
import trio

from tests.gateway.server_process import LISTENING, ServerProcess
from tests.support.js import JS_DIR, require_node

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("readme")) as proc:
        yield proc


def test_a_new_machine_needs_exactly_two_commands() -> None:
    section = README.split("## On a new machine", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S)]
    assert commands == ["scripts/serve", "scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci


def test_scripts_serve_runs_the_server_on_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "VENV": sys.prefix}
    env.pop("SUPERVISOR_API_KEY", None)
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "serve"), "--port", "0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        match = LISTENING.search(lines[0])
        assert match, lines
        assert "sqlite:///" in lines[1] and "supervisor.db" in lines[1], lines
        with urllib.request.urlopen(f"{match.group(1)}/healthz", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        assert (tmp_path / "data" / "supervisor.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that requires an API key: the quick starts, which send none, are refused."""
    with ServerProcess(tmp_path_factory.mktemp("readme-keyed"), "--api-key", "sesame") as proc:
        yield proc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_python_quick_start(url: str) -> subprocess.CompletedProcess[str]:
    (snippet,) = [block for block in code_blocks("python") if "socketio.Client(" in block]
    code = snippet.replace("http://127.0.0.1:3000", url)
    assert code != snippet, "the quick start no longer points at the default address"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def run_js_quick_start(url: str) -> subprocess.CompletedProcess[str]:
    (snippet,) = code_blocks("js")
    code = snippet.replace("http://127.0.0.1:3000", url)
    assert code != snippet
    node = require_node()
    # Inside tests/js so that `import "socket.io-client"` resolves. The snippet ends by itself.
    script = JS_DIR / f".readme-quick-start-{os.getpid()}.mjs"
    script.write_text(code)
    try:
        return subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, cwd=JS_DIR)
    finally:
        script.unlink()


def _ordered_ids(lines: list[str], pattern: str) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.search(pattern, line))]


def test_python_quick_start(server: ServerProcess) -> None:
    done = run_python_quick_start(server.url)
    assert done.returncode == 0, done.stderr
    assert re.search(r"ack \{'id': \d+\}", done.stdout), done.stdout
    assert "'source': 'user'" in done.stdout and "'content': 'hello'" in done.stdout
    assert "'source': 'agent'" in done.stdout  # the default EchoAgent answered
    lines = done.stdout.splitlines()
    ids = _ordered_ids(lines, r"^event \{'id': (\d+)")
    assert ids == sorted(ids) and len(ids) == len(set(ids)), done.stdout  # one thread prints, in order
    ready = [i for i, line in enumerate(lines) if "STATUS$READY" in line]
    assert len(ready) == 1 and "'source': 'agent'" in lines[-1], done.stdout  # ends on the echo


def test_javascript_quick_start(server: ServerProcess) -> None:
    done = run_js_quick_start(server.url)
    assert done.returncode == 0, done.stderr
    assert re.search(r"ack \{ id: \d+ \}", done.stdout), done.stdout
    assert "source: 'user'" in done.stdout and "source: 'agent'" in done.stdout


@pytest.mark.parametrize("run", [run_python_quick_start, run_js_quick_start], ids=["python", "js"])
def test_quick_starts_print_the_servers_refusal(keyed_server: ServerProcess, run: Any) -> None:
    done = run(keyed_server.url)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "error: Invalid or missing credentials (CONNECT$INVALID_CREDENTIALS)" in done.stderr, done.stderr


@pytest.mark.parametrize("run", [run_python_quick_start, run_js_quick_start], ids=["python", "js"])
def test_quick_starts_give_up_on_a_wrong_port(run: Any) -> None:
    done = run(f"http://127.0.0.1:{_free_port()}")  # nobody listens: no retrying forever
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "error: " in done.stderr and "is the server running at this address?" in done.stderr, done.stderr


async def test_library_example_serves_events_and_acks() -> None:
    (example,) = [block for block in code_blocks("python") if "from server.socketio import Server" in block]
    body, last = example.rstrip().rsplit("\n", 1)
    assert last == 'trio.run(sio.serve, "127.0.0.1", 5000)'
    namespace: dict[str, Any] = {}
    exec(compile(body, "README.md", "exec"), namespace)
    sio = namespace["sio"]

    def client(url: str) -> tuple[Any, Any]:
        received: list[Any] = []
        c = socketio.Client()
        c.on("welcome", received.append)
        c.connect(url, wait_timeout=10)
        try:
            ack = c.call("echo", {"x": 1}, timeout=10)
            c.sleep(0.2)
        finally:
            c.disconnect()
        return received, ack

    async with trio.open_nursery() as nursery:
        http = await nursery.start(partial(sio.serve, "127.0.0.1", 0))
        with trio.fail_after(30):
            received, ack = await trio.to_thread.run_sync(client, http.url)
        nursery.cancel_scope.cancel()
    assert ack == {"x": 1}
    assert len(received) == 1 and set(received[0]) == {"sid"}
