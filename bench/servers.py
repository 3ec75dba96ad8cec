"""Starting, checking and stopping the servers under benchmark.

Owns: how each server is launched (a command template with `{port}`, `{root}`, `{python}`, `{venv}`,
`{bench_python}`, `{node}`, `{tmp}`, `{close_delay}` placeholders), pinning it to its CPU, waiting until it
answers an Engine.IO handshake on 127.0.0.1, the "not available" verdict when it cannot start, its log file,
and stopping its whole process group.
Must not know: the workloads or how results are reported.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

#: CPU for the server under test and CPU for the load driver (on a machine with at least two cores).
SERVER_CPU = 0
DRIVER_CPU = 1


class NotAvailable(Exception):
    """The server could not be started (missing script, crashed at start, never answered)."""


@dataclass(frozen=True)
class ServerSpec:
    """One server slot of a benchmark run."""

    key: str  # "ours", "python-socketio", "node"
    label: str
    command: str  # template, see the module docstring
    requires: tuple[str, ...] = ()  # files (templates) that must exist, else "not available"
    env: dict[str, str] = field(default_factory=dict)


def placeholders(port: int, tmp: str, close_delay: float) -> dict[str, str]:
    venv = Path(os.environ.get("VENV", str(ROOT / ".venv")))
    return {
        "port": str(port),
        "root": str(ROOT),
        "venv": str(venv),
        "python": str(venv / "bin" / "python"),
        "bench_python": str(Path(os.environ.get("BENCH_VENV", str(BENCH / ".venv"))) / "bin" / "python"),
        "node": os.environ.get("NODE", "node"),
        "tmp": tmp,
        "close_delay": f"{close_delay:g}",
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinning_available() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def child_setup(cpu: int | None) -> Callable[[], None]:
    """preexec_fn: pin to one CPU (inherited by every thread the child creates) and raise the fd limit."""

    def setup() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            target = 65536 if hard == resource.RLIM_INFINITY else hard
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))

    return setup


@dataclass
class RunningServer:
    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _answers_handshake(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200 and resp.read(2).decode(errors="replace").startswith("0"))
    except (OSError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # our own process group, started with start_new_session
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace)


@contextlib.contextmanager
def running(
    spec: ServerSpec,
    log_dir: Path,
    tag: str,
    *,
    close_delay: float = 1.0,
    pin: bool = True,
    start_timeout: float = 20.0,
) -> Iterator[RunningServer]:
    """Starts `spec` on a free port, yields it once it answers a handshake, stops it afterwards.

    Raises NotAvailable (with the reason) when a required file is missing, the command cannot be run, the
    process exits early or it does not answer within start_timeout.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        port = free_port()
        values = placeholders(port, tmp, close_delay)
        for required in spec.requires:
            path = Path(required.format(**values))
            if not path.exists():
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                raise NotAvailable(f"{shown} is missing")
        argv = shlex.split(spec.command.format(**values))
        log_path = log_dir / f"{spec.key}-{tag}.log"
        env = {**os.environ, **spec.env}
        with open(log_path, "wb") as log:
            log.write(f"$ {shlex.join(argv)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=child_setup(SERVER_CPU if pin else None),
                )
            except OSError as err:
                raise NotAvailable(f"cannot run {argv[0]}: {err}") from err
        try:
            deadline = time.monotonic() + start_timeout
            while not _answers_handshake(port):
                code = process.poll()
                if code is not None:
                    raise NotAvailable(f"exited with code {code} at start: {_log_tail(log_path)}")
                if time.monotonic() > deadline:
                    raise NotAvailable(f"no Engine.IO handshake on port {port} within {start_timeout:g} s")
                time.sleep(0.1)
            yield RunningServer(spec, port, process, log_path)
        finally:
            _stop(process)
