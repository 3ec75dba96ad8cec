"""The shell runtime as an agent: each session's ``run`` actions execute in its own long-lived bash.

Owns: ``ShellAgent``, ``ShellAgentFactory``, ``workspace_name`` and the OpenHands-shaped ``run``
observation (``run_observation``). An incarnation (``lifespan``) starts one bash in
``workspaces_dir/<workspace_name(session_id)>/`` and ends it at exit; the directory is never removed here.

Actions understood (OpenHands' CmdRunAction): ``{"action": "run", "args": {"command": str, "timeout":
seconds?, "is_input": bool?}}``. Answers are CmdOutputObservations, ``cause`` = the action's event id; a
command still running after ``stream_interval`` streams its new output as observations with ``exit_code``
-1, then one final observation carries the real exit code (the contents of all of them, in order, are the
whole output). ``is_input`` actions are for the running command: ``C-c`` interrupts it, other text is
written to its stdin; they reach the agent through ``intercept`` (the actor offers each user event stored
while a turn runs), since the turn that runs the command is still in progress. Other actions are ignored.

Knows nothing of actors, stores or connections: it sees events and ``emit``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
import trio

from actors.agent import Emit
from actors.events import StoredEvent
from actors.runtimes.config import RuntimeConfig
from actors.runtimes.shell import CommandResult, Shell, ShellDied, open_shell

log = structlog.get_logger(__name__)

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


def workspace_name(session_id: str) -> str:
    """The session's directory name: the id itself when it is a plain name, else a hash of it (so no id can
    reach outside ``workspaces_dir``)."""
    if _SAFE_NAME.fullmatch(session_id):
        return session_id
    return "_" + hashlib.sha256(session_id.encode()).hexdigest()[:32]


def run_observation(command: str, content: str, *, exit_code: int, working_dir: str, pid: int,
                    cause: int, suffix: str = "") -> dict[str, Any]:
    """One CmdOutputObservation payload (the actor adds id and timestamp)."""
    if exit_code == -1:
        message = f"Command `{command}` is still running."
    else:
        message = f"Command `{command}` executed with exit code {exit_code}."
    return {
        "observation": "run",
        "source": "environment",
        "message": message,
        "content": content,
        "cause": cause,
        "extras": {
            "command": command,
            "metadata": {
                "exit_code": exit_code,
                "working_dir": working_dir,
                "pid": pid,
                "prefix": "",
                "suffix": suffix,
            },
            "hidden": False,
        },
        "success": exit_code == 0,
    }


class ShellAgent:
    """One session's shell. ``snapshot`` keeps the last working directory, restored at the next start."""

    __slots__ = ("_nursery", "_shell", "_shell_scope", "_start_dir", "config", "session_id", "workspace")

    def __init__(self, config: RuntimeConfig, session_id: str) -> None:
        self.config = config
        self.session_id = session_id
        self.workspace = config.workspaces / workspace_name(session_id)
        self._shell: Shell | None = None
        self._nursery: trio.Nursery | None = None
        self._shell_scope: trio.CancelScope | None = None
        self._start_dir: str | None = None

    @property
    def shell(self) -> Shell | None:
        return self._shell

    def runtime_info(self) -> dict[str, Any] | None:
        """For introspection (admin API): the live shell's pid and start time (trio clock), or None."""
        sh = self._shell
        if sh is None or not sh.alive:
            return None
        return {"kind": "shell", "pid": sh.pid, "started_at": sh.started_at, "workspace": str(self.workspace)}

    @asynccontextmanager
    async def lifespan(self, snapshot: dict[str, Any] | None, nursery: trio.Nursery) -> AsyncIterator[None]:
        start = (snapshot or {}).get("working_dir")
        self._start_dir = start if isinstance(start, str) else None
        self._nursery = nursery
        try:
            await self._start_shell()
            yield
        finally:
            self._stop_shell()
            self._nursery = None

    async def _start_shell(self) -> None:
        """Start a shell in a task of the agent's nursery; it runs until ``_stop_shell`` or the lifespan's
        end. A shell that died (``exit``, killed) is replaced by the next command."""
        assert self._nursery is not None
        self._shell = await self._nursery.start(self._hold_shell)

    async def _hold_shell(self, *, task_status: trio.TaskStatus[Shell]) -> None:
        cfg = self.config
        with trio.CancelScope() as scope:
            self._shell_scope = scope
            async with open_shell(
                self.workspace, shell=cfg.shell, launcher=cfg.launcher, env=dict(cfg.env),
                start_dir=self._start_dir, max_output_bytes=cfg.max_output_bytes,
                interrupt_grace=cfg.interrupt_grace, stream_interval=cfg.stream_interval,
                stop_grace=cfg.stop_grace,
            ) as sh:
                log.info("runtime.shell_started", session_id=self.session_id, pid=sh.pid)
                task_status.started(sh)
                await trio.sleep_forever()

    def _stop_shell(self) -> None:
        if self._shell_scope is not None:
            self._shell_scope.cancel()  # the holder's exit ends bash: stdin closed, SIGTERM, grace, SIGKILL
            self._shell_scope = None

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        payload = event.payload
        if payload.get("action") != "run":
            return
        args = payload.get("args")
        args = args if isinstance(args, dict) else {}
        command = args.get("command")
        if not isinstance(command, str):
            return
        if args.get("is_input"):
            # Reaches here only when nothing was running to take it (``intercept`` said no).
            await emit(run_observation(command, "", exit_code=1, working_dir=self._cwd(), pid=self._pid(),
                                       cause=event.id, suffix="[no command is running to receive input]"))
            return
        timeout = self._timeout(args.get("timeout"))
        sh = self._shell
        if sh is None or not sh.alive:
            self._stop_shell()
            self._start_dir = sh.working_dir if sh is not None else self._start_dir
            await self._start_shell()
            sh = self._shell
        assert sh is not None

        async def stream(text: str) -> None:
            await emit(run_observation(command, text, exit_code=-1, working_dir=sh.working_dir, pid=sh.pid,
                                       cause=event.id))

        try:
            result = await sh.run(command, time_limit=timeout, on_output=stream)
        except ShellDied:
            result = CommandResult("", -1, sh.working_dir, shell_restarted=True)
        await emit(run_observation(command, result.output, exit_code=result.exit_code,
                                   working_dir=result.working_dir, pid=sh.pid, cause=event.id,
                                   suffix=_suffix(result, timeout)))

    def intercept(self, event: StoredEvent) -> bool:
        """Take an ``is_input`` run action at once if a command is running (C-c, or text for its stdin).
        Synchronous: called by the actor as it queues the event. False: queue it as a normal turn."""
        payload = event.payload
        args = payload.get("args")
        if payload.get("action") != "run" or not isinstance(args, dict) or not args.get("is_input"):
            return False
        sh = self._shell
        command = args.get("command")
        if sh is None or not sh.busy or not isinstance(command, str):
            return False
        if command.strip() == "C-c":
            return sh.interrupt()
        assert self._nursery is not None
        self._nursery.start_soon(_send_input, sh, command)
        return True

    def snapshot(self) -> dict[str, Any] | None:
        return {"working_dir": self._cwd()}

    def _cwd(self) -> str:
        sh = self._shell
        if sh is not None:
            return sh.working_dir
        return self._start_dir or str(self.workspace)

    def _pid(self) -> int:
        return self._shell.pid if self._shell is not None else -1

    def _timeout(self, value: object) -> float:
        cfg = self.config
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return min(float(value), cfg.max_timeout)
        return min(cfg.default_timeout, cfg.max_timeout)


async def _send_input(sh: Shell, text: str) -> None:
    try:
        await sh.send_input(text)
    except ShellDied:
        log.info("runtime.input_dropped", pid=sh.pid)


def _suffix(result: CommandResult, timeout: float) -> str:
    notes = []
    if result.timed_out:
        notes.append(f"[The command timed out after {timeout:g} seconds and was interrupted.]")
    elif result.interrupted:
        notes.append("[The command was interrupted.]")
    if result.shell_restarted:
        notes.append("[The shell ended; the next command starts a new one in the same directory "
                     "(variables are reset).]")
    return "\n".join(notes)


class ShellAgentFactory:
    """``supervisor serve --agent shell``: one ``ShellAgent`` per session (``create_agent`` calls
    ``for_session``)."""

    __slots__ = ("config",)

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config

    def for_session(self, session_id: str) -> ShellAgent:
        return ShellAgent(self.config, session_id)
