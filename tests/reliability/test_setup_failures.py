"""``supervisor serve`` failing to start: one ``error: ...`` line on stderr and a documented exit code.

Every case runs the real command in a subprocess (``serve_fails``: exactly one stderr line, no traceback).
Also: cyclopts' own parse errors in the same one-line form, ``--version`` from the package metadata, the
help without generated ``--empty-...`` flags, and Ctrl-C ending ``serve`` and the README's library example
cleanly.
"""

from __future__ import annotations

import importlib.metadata
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server.cli.serve_errors import (
    EXIT_CANNOT_LISTEN,
    EXIT_DATA_DIR,
    EXIT_STORE,
    EXIT_STORE_NEWER,
    EXIT_USAGE,
)
from tests.gateway.server_process import supervisor_command
from tests.reliability.serve_run import serve_fails, supervisor_env


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, line = serve_fails(tmp_path, "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert code == EXIT_CANNOT_LISTEN
    assert line == (f"error: cannot listen on 127.0.0.1:{port}: the address is already in use "
                    "(another server on this port?); pick another --port")


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory cannot be made under a file, even by root
    code, line = serve_fails(tmp_path, "--data-dir", str(blocker / "data"))
    assert code == EXIT_DATA_DIR
    assert line.startswith(f"error: cannot use the data directory '{blocker / 'data'}': "), line
    assert line.endswith("pass a writable --data-dir")


def test_unwritable_store_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = f"sqlite:///{blocker / 'sub' / 'x.db'}"
    code, line = serve_fails(tmp_path, "--store", store, "--data-dir", str(tmp_path / "d"))
    assert code == EXIT_STORE
    assert line.startswith(f"error: cannot open SQLite database '{blocker / 'sub' / 'x.db'}': "), line


@pytest.mark.parametrize("content", [b"this is not a database" * 50, b"SQLite format 3\x00" + b"\xff" * 2000])
def test_corrupt_database(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.db").write_bytes(content)
    code, line = serve_fails(tmp_path, "--store", "sqlite:///bad.db", "--data-dir", str(tmp_path / "d"))
    assert code == EXIT_STORE
    assert line.startswith("error: 'bad.db' is not a Session Supervisor database (SQLite says: "), line


def test_foreign_database(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE invoices (n INTEGER)")
    code, line = serve_fails(tmp_path, "--store", "sqlite:///other.db", "--data-dir", str(tmp_path / "d"))
    assert code == EXIT_STORE
    assert line.startswith("error: 'other.db' is another program's SQLite database"), line
    with sqlite3.connect(tmp_path / "other.db") as conn:  # untouched: no tables added
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert names == ["invoices"]


def test_newer_schema(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "new.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    code, line = serve_fails(tmp_path, "--store", "sqlite:///new.db", "--data-dir", str(tmp_path / "d"))
    assert code == EXIT_STORE_NEWER
    assert "has schema version 99, newer than the 1 this server knows" in line, line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "-1"], "error: --port: [http] port: must be between 0 and 65535, got -1"),
        (["--port", "70000"], "error: --port: [http] port: must be between 0 and 65535, got 70000"),
        (["--log-level", "verbose"], "error: --log-level: [logging] level: expected one of debug, info"),
        (["--log-format", "xml"], "error: --log-format: [logging] format: expected one of auto, json"),
        (["--bogus"], "error: Unknown option: --bogus."),
        (["--port", "abc"], 'error: Invalid value for --port: unable to convert "abc" into int.'),
    ],
)
def test_bad_options_are_refused_at_parse_time(tmp_path: Path, args: list[str], expected: str) -> None:
    cmd = [*supervisor_command(), "serve", "--data-dir", str(tmp_path / "d"), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=supervisor_env())
    assert done.returncode == EXIT_USAGE
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(expected), done.stderr
    assert "╭" not in done.stderr and not (tmp_path / "d").exists()  # nothing was set up


def test_refusing_a_public_host_comes_before_any_warning(tmp_path: Path) -> None:
    cmd = [*supervisor_command(), "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=supervisor_env())
    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith("error: refusing to listen on 0.0.0.0 without client authentication")
    assert "no_authentication" not in done.stderr


def test_version_comes_from_the_package_metadata() -> None:
    done = subprocess.run([*supervisor_command(), "--version"], capture_output=True, text=True, timeout=60,
                          env=supervisor_env())
    assert done.stdout.strip() == importlib.metadata.version("session-supervisor") != "0.0.0"


def test_help_has_no_generated_empty_flags_nor_repeated_env_lines() -> None:
    done = subprocess.run([*supervisor_command(), "serve", "--help"], capture_output=True, text=True,
                          timeout=60, env={**supervisor_env(), "COLUMNS": "250"})
    assert "--cors-allowed-origins" in done.stdout
    assert "--empty-" not in done.stdout and "[env var:" not in done.stdout


def _default_sigint() -> None:  # a child of a background job would inherit SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(cmd: list[str], cwd: Path, ready: str) -> subprocess.CompletedProcess[str]:
    """Start ``cmd``, wait for the line containing ``ready``, send SIGINT, collect the rest."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=supervisor_env(), preexec_fn=_default_sigint)
    stream = proc.stdout
    assert stream is not None
    seen = []
    deadline = time.monotonic() + 30
    while ready not in (line := stream.readline()):
        seen.append(line)
        assert line and time.monotonic() < deadline, "".join(seen)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(seen) + line + out, err)


def test_ctrl_c_stops_serve_cleanly(tmp_path: Path) -> None:
    cmd = [*supervisor_command(), "serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
           "--log-format", "json"]
    done = _interrupt(cmd, tmp_path, "Admin token:")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    assert '"signal": "SIGINT"' in done.stderr and '"server.stopped"' in done.stderr


def test_ctrl_c_ends_the_readme_library_example(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("from server.socketio import Server", 1)[1].split("```", 1)[0]
    code = ("import trio\nfrom server.socketio import Server" + example).replace(
        'trio.run(sio.serve, "127.0.0.1", 5000)',
        'trio.run(sio.serve, "127.0.0.1", 0)\nprint("ended")')
    assert "ended" in code
    done = _interrupt([sys.executable, "-c", code], tmp_path, "http listening")  # structlog: stdout
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ended"
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
