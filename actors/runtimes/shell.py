"""One long-lived bash process in a workspace, running one command at a time.

Owns: ``Shell`` (opened with ``open_shell``), ``CommandResult``. The shell reads commands on stdin; each
command is sent as one line, ``__ss_run '<command>'; printf '<marker>:%d:%s\\n' "$?" "$PWD"``, where
``__ss_run`` evals its argument inside a function, so ``cd``, variables and files persist between commands,
a syntax error is just exit status 2, and an INT trap (``return 130``) ends the command on SIGINT while bash
lives on. The marker is random per shell. stderr is merged into stdout. The command's output is what comes
before the marker; it is capped at ``max_output_bytes`` (the rest is counted, and a marker line says so).

Interrupting (C-c, or a timeout): SIGINT to the shell's process group; if the command has not ended after
``interrupt_grace``, SIGKILL to every descendant of bash; if bash itself does not answer then (a builtin
loop ignores the INT trap), bash is killed and the shell is marked dead: the caller opens a new one (the
workspace stays; ``cd`` and variables are lost). A command that makes bash exit (``exit 3``) ends the shell
the same way, its exit status reported as the command's.

Knows nothing of agents, events or sessions.
"""

from __future__ import annotations

import codecs
import os
import secrets
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from actors.runtimes.process import descendants, kill_all, owned_process, signal_group

OnOutput = Callable[[str], Awaitable[None]]
"""``await on_output(text)``: new output of the running command (streamed while it runs)."""

TRUNCATED = "\n[... output truncated: {omitted} more bytes not shown ...]\n"
_START_TIMEOUT = 10.0
_READ = 65536


class ShellDied(Exception):
    """The shell process ended (or could not start); open a new one."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    output: str
    """The part of the output not streamed through ``on_output`` (all of it if nothing was streamed)."""
    exit_code: int
    working_dir: str
    timed_out: bool = False
    interrupted: bool = False
    omitted_bytes: int = 0
    shell_restarted: bool = False


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


class Shell:
    """A running bash. ``run`` one command at a time; ``interrupt`` and ``send_input`` from other tasks."""

    __slots__ = (
        "_buf",
        "_decoder",
        "_escalate_at",
        "_interrupted",
        "_lock",
        "_marker",
        "_proc",
        "_read_scope",
        "_stale",
        "dead",
        "interrupt_grace",
        "max_output_bytes",
        "pid",
        "started_at",
        "stream_interval",
        "working_dir",
    )

    def __init__(self, proc: trio.Process, working_dir: str, *, max_output_bytes: int,
                 interrupt_grace: float, stream_interval: float) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.working_dir = working_dir
        self.max_output_bytes = max_output_bytes
        self.interrupt_grace = interrupt_grace
        self.stream_interval = stream_interval
        self.started_at = trio.current_time()
        self.dead = False
        self._marker = f"__SS_{secrets.token_hex(8)}_DONE__"
        self._buf = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = trio.Lock()
        self._interrupted = False
        self._escalate_at: float | None = None
        self._read_scope: trio.CancelScope | None = None
        self._stale = False

    @property
    def alive(self) -> bool:
        """False once bash has ended (or was found ended: killed from outside between commands)."""
        if not self.dead and self._proc.poll() is not None:
            self.dead = True
        return not self.dead

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def _write(self, text: str) -> None:
        assert self._proc.stdin is not None
        try:
            await self._proc.stdin.send_all(text.encode())
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.dead = True
            raise ShellDied("the shell's stdin is closed") from exc

    async def _read(self) -> str | None:
        """More decoded output, or None at EOF."""
        assert self._proc.stdout is not None
        try:
            data = await self._proc.stdout.receive_some(_READ)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            return None
        return self._decoder.decode(data)

    async def handshake(self) -> None:
        """Install the command wrapper and read the first marker (called once by ``open_shell``)."""
        # ``2>/dev/null``: a SIGINT that lands between commands (a late C-c) has no function to return from.
        await self._write(f"trap 'return 130 2>/dev/null' INT; __ss_run() {{ eval \"$1\"; }}; "
                          f"printf '%s:0:%s\\n' {self._marker} \"$PWD\"\n")
        with trio.move_on_after(_START_TIMEOUT):
            while True:
                text = await self._read()
                if text is None:
                    break
                self._buf += text
                found = self._take_marker()
                if found is not None:
                    self.working_dir = found[2]
                    self._buf = ""
                    return
        self.dead = True
        raise ShellDied("the shell did not start")

    def _take_marker(self) -> tuple[str, int, str] | None:
        """(output before the marker, exit code, cwd) when a whole marker line is buffered."""
        buf = self._buf
        at = buf.find(self._marker + ":")
        if at < 0:
            return None
        end = buf.find("\n", at)
        if end < 0:
            return None
        code, _, cwd = buf[at + len(self._marker) + 1 : end].partition(":")
        self._buf = buf[end + 1 :]
        try:
            exit_code = int(code)
        except ValueError:
            exit_code = -1
        return buf[:at], exit_code, cwd

    def _partial_marker(self) -> int:
        """Length of the longest end of the buffer that may be the start of a marker (held back)."""
        buf, marker = self._buf, self._marker + ":"
        at = buf.find(marker[0], max(0, len(buf) - len(marker)))
        while at >= 0:
            if marker.startswith(buf[at:]):
                return len(buf) - at
            at = buf.find(marker[0], at + 1)
        return 0

    def interrupt(self) -> bool:
        """SIGINT to the running command (like C-c). False if nothing is running."""
        if not self.busy or self.dead:
            return False
        self._interrupted = True
        if self._escalate_at is None:
            self._escalate_at = trio.current_time() + self.interrupt_grace
            if self._read_scope is not None:
                self._read_scope.deadline = min(self._read_scope.deadline, self._escalate_at)
        return signal_group(self.pid, signal.SIGINT)

    async def send_input(self, text: str) -> None:
        """Write ``text`` and a newline to the running command's stdin."""
        await self._write(text + "\n")

    async def run(self, command: str, *, time_limit: float,
                  on_output: OnOutput | None = None) -> CommandResult:
        """Run one command (queued behind a running one). Raises ``ShellDied`` if the shell is dead."""
        async with self._lock:
            if self.dead:
                raise ShellDied("the shell has ended")
            if self._stale:  # a cancelled run left its command behind: interrupt it, drop its output
                self._stale = False
                await self._collect(0.0, None)
                if self.dead:
                    raise ShellDied("the shell ended while a cancelled command was interrupted")
            self._interrupted = False
            self._escalate_at = None
            await self._write(f"__ss_run {_quote(command.replace(chr(0), ''))}; "
                              f"printf '%s:%d:%s\\n' {self._marker} \"$?\" \"$PWD\"\n")
            try:
                return await self._collect(time_limit, on_output)
            except BaseException:
                # Cancelled (the turn watchdog, the incarnation's end): the command may still run and its
                # marker is still to come; the next run interrupts it and reads up to that marker first.
                self._stale = not self.dead
                raise

    async def _collect(self, time_limit: float, on_output: OnOutput | None) -> CommandResult:
        kept_bytes = 0
        omitted = 0
        pending: list[str] = []  # kept output not streamed yet
        now = trio.current_time()
        deadline = now + time_limit
        next_flush = now + self.stream_interval
        timed_out = False
        escalation = 0  # 1: SIGINT sent, 2: descendants killed, 3: shell killed

        def keep(text: str) -> None:
            nonlocal kept_bytes, omitted
            data = text.encode()
            room = self.max_output_bytes - kept_bytes
            if len(data) > room:
                omitted += len(data) - max(room, 0)
                text = data[: max(room, 0)].decode(errors="ignore")
            if text:
                pending.append(text)
                kept_bytes += len(text.encode())

        while True:
            found = self._take_marker()
            if found is not None:
                before, exit_code, cwd = found
                keep(before)
                self.working_dir = cwd
                break
            held = self._partial_marker()
            if len(self._buf) > held:
                keep(self._buf[: len(self._buf) - held])
                self._buf = self._buf[len(self._buf) - held :]
            streaming = bool(pending) and on_output is not None
            if streaming and trio.current_time() >= next_flush:
                chunk = "".join(pending)
                pending.clear()
                assert on_output is not None
                await on_output(chunk)
                next_flush = trio.current_time() + self.stream_interval
                streaming = False
            if escalation == 0 and self._escalate_at is not None:  # C-c: SIGINT is sent already
                escalation = 1
                deadline = self._escalate_at
            text = None
            with trio.CancelScope(deadline=min(deadline, next_flush) if streaming else deadline) as scope:
                self._read_scope = scope
                text = await self._read()
                if text is None:  # EOF: bash exited (``exit``, or killed below)
                    keep(self._buf)
                    self._buf = ""
                    exit_code = await self._proc.wait()
                    self.dead = True
                    break
                self._buf += text
            self._read_scope = None
            if text is not None or trio.current_time() < deadline:
                continue
            # Past the deadline: escalate one step, each followed by its grace period.
            escalation += 1
            if escalation == 1:
                timed_out = True
                self._interrupted = True
                signal_group(self.pid, signal.SIGINT)
            elif escalation == 2:
                kill_all(descendants(self.pid))
            elif escalation == 3:
                signal_group(self.pid, signal.SIGKILL)
            else:
                keep(self._buf)
                self._buf = ""
                exit_code = await self._proc.wait()
                self.dead = True
                break
            deadline = trio.current_time() + self.interrupt_grace
        self._read_scope = None
        self._escalate_at = None
        output = "".join(pending)
        if omitted:
            output += TRUNCATED.format(omitted=omitted)
        if (timed_out or self._interrupted) and exit_code == 0:
            exit_code = 124 if timed_out else 130  # the command swallowed SIGINT and ended well
        return CommandResult(
            output=output,
            exit_code=exit_code,
            working_dir=self.working_dir,
            timed_out=timed_out,
            interrupted=self._interrupted,
            omitted_bytes=omitted,
            shell_restarted=self.dead,
        )


def _environment(workspace: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(workspace),
        "TERM": "dumb",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
    }
    env.update(extra)
    return env


@asynccontextmanager
async def open_shell(
    workspace: Path,
    *,
    shell: Sequence[str] = ("bash", "--noprofile", "--norc"),
    launcher: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    start_dir: str | None = None,
    max_output_bytes: int = 1 << 20,
    interrupt_grace: float = 3.0,
    stream_interval: float = 1.0,
    stop_grace: float = 5.0,
) -> AsyncIterator[Shell]:
    """Start bash (behind ``launcher``, ``{workspace}`` substituted) in ``workspace``; end it on exit.

    ``start_dir``: a directory to ``cd`` into first (the last working directory of a previous incarnation),
    ignored if it no longer exists."""
    await trio.Path(workspace).mkdir(parents=True, exist_ok=True)
    argv = [part.replace("{workspace}", str(workspace)) for part in (*launcher, *shell)]
    async with owned_process(
        argv, cwd=workspace, env=_environment(workspace, env or {}), grace=stop_grace,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    ) as proc:
        sh = Shell(proc, str(workspace), max_output_bytes=max_output_bytes,
                   interrupt_grace=interrupt_grace, stream_interval=stream_interval)
        await sh.handshake()
        if start_dir and start_dir != sh.working_dir:
            await sh.run(f"cd {_quote(start_dir)} 2>/dev/null; true", time_limit=_START_TIMEOUT)
        yield sh
