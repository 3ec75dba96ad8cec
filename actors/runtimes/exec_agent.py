"""An agent in another process, any language, speaking JSON lines on its stdin and stdout.

Owns: ``ExecAgent``, ``ExecAgentFactory``, ``ExecAgentError`` and the wire protocol (version 1, specified in
docs/agents.md). One process per incarnation, in its own process group, started by ``lifespan`` and ended at
its exit (``stop``, then stdin closed, then SIGTERM and SIGKILL after grace periods). Its stderr goes to the
log, line by line, with the session id. Anything wrong (the process exits, a line is not a JSON object of a
known type, a message nobody asked for, a line too long, lines too fast, no answer in time) raises
``ExecAgentError``: from ``handle`` or from the reader task in the agent's nursery, so the actor of this one
session crashes and is restarted under its budget.

Server -> agent: ``start`` (session_id, snapshot), ``event`` (a stored user event), ``snapshot_request``,
``stop``. Agent -> server: ``ready`` (answers start), ``emit`` (only during a turn), ``turn_done`` (ends the
turn), ``snapshot`` (answers snapshot_request; the server asks after every turn and keeps the answer for
``snapshot()``). Knows nothing of actors or stores.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
import trio

from actors.agent import Emit
from actors.events import StoredEvent, canonical_json
from actors.runtimes.config import RuntimeConfig
from actors.runtimes.process import owned_process

log = structlog.get_logger(__name__)

PROTOCOL_VERSION = 1
_ANSWERS = {"ready": "start", "turn_done": "event", "snapshot": "snapshot_request"}
_STDERR_LINE = 4096


class ExecAgentError(Exception):
    """The agent process broke the protocol or ended: its session's actor crashes."""


class _Lines:
    """Bounded lines from a byte stream. A line longer than ``limit`` bytes raises ``ExecAgentError``, or,
    with ``cut``, comes out cut at ``limit`` (the rest of it is skipped): memory stays bounded either way."""

    __slots__ = ("_buf", "_cut", "_eof", "_limit", "_skipping", "_stream")

    def __init__(self, stream: trio.abc.ReceiveStream, limit: int, *, cut: bool = False) -> None:
        self._stream = stream
        self._limit = limit
        self._cut = cut
        self._buf = bytearray()
        self._eof = False
        self._skipping = False

    async def next(self) -> bytes | None:
        """The next line without its newline; None at end of stream."""
        while True:
            at = self._buf.find(b"\n")
            if at >= 0:
                line = bytes(self._buf[:at])
                del self._buf[: at + 1]
                if self._skipping:
                    self._skipping = False
                    continue
                if len(line) > self._limit:
                    if not self._cut:
                        raise ExecAgentError(f"line of {len(line)} bytes, over the {self._limit} limit")
                    line = line[: self._limit]
                return line
            if len(self._buf) > self._limit:
                if not self._cut:
                    raise ExecAgentError(f"line over the {self._limit} byte limit")
                skipping, self._skipping = self._skipping, True
                line = bytes(self._buf[: self._limit])
                self._buf.clear()
                if not skipping:
                    return line
                continue
            if self._eof:
                if self._buf and not self._skipping:
                    line = bytes(self._buf)
                    self._buf.clear()
                    return line
                return None
            try:
                data = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._eof = True
            self._buf += data


class _Bucket:
    """A token bucket: ``rate`` per second sustained, ``burst`` at once."""

    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._at = trio.current_time()

    def take(self) -> bool:
        now = trio.current_time()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class ExecAgent:
    __slots__ = ("_inbox", "_open", "_proc", "_snapshot", "_stderr_done", "_stopping", "argv", "config",
                 "log", "session_id", "started_at")

    def __init__(self, argv: Sequence[str], config: RuntimeConfig, session_id: str) -> None:
        self.argv = tuple(argv)
        self.config = config
        self.session_id = session_id
        self.log = log.bind(session_id=session_id)
        self._proc: trio.Process | None = None
        self._inbox: trio.MemoryReceiveChannel[dict[str, Any]] | None = None
        self._open: dict[str, int] = {}  # requests sent and not answered yet, by type
        self._snapshot: dict[str, Any] | None = None
        self._stopping = False
        self._stderr_done = trio.Event()
        self.started_at: float | None = None

    def runtime_info(self) -> dict[str, Any] | None:
        if self._proc is None or self._proc.returncode is not None:
            return None
        return {"kind": "exec", "pid": self._proc.pid, "started_at": self.started_at,
                "command": list(self.argv)}

    @asynccontextmanager
    async def lifespan(self, snapshot: dict[str, Any] | None, nursery: trio.Nursery) -> AsyncIterator[None]:
        cfg = self.config
        self._snapshot = snapshot
        send, receive = trio.open_memory_channel[dict[str, Any]](16)
        self._inbox = receive
        async with owned_process(self.argv, grace=cfg.stop_grace) as proc:
            self._proc = proc
            self.started_at = trio.current_time()
            self.log.info("runtime.exec_started", pid=proc.pid, command=list(self.argv))
            assert proc.stdout is not None and proc.stderr is not None
            nursery.start_soon(self._read_stdout, proc.stdout, send)
            nursery.start_soon(self._read_stderr, proc.stderr)
            try:
                await self._send({"type": "start", "protocol": PROTOCOL_VERSION,
                                  "session_id": self.session_id, "snapshot": snapshot})
                try:
                    with trio.fail_after(cfg.exec_start_timeout):
                        await self._expect("ready")
                except trio.TooSlowError:
                    raise ExecAgentError("the agent did not answer start with ready in time") from None
                yield
            finally:
                await self._stop(proc)

    async def _stop(self, proc: trio.Process) -> None:
        """Ask politely (``stop``, stdin closed) and wait up to ``stop_grace``; ``owned_process`` does the
        rest."""
        self._stopping = True
        with trio.CancelScope(shield=True):
            with suppress(ExecAgentError):
                await self._send({"type": "stop"})
            assert proc.stdin is not None
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await proc.stdin.aclose()
            with trio.move_on_after(self.config.stop_grace):
                await proc.wait()
                await self._stderr_done.wait()  # its last words reach the log before the reader is cancelled

    async def _send(self, message: dict[str, Any]) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        kind = message["type"]
        if kind in _ANSWERS.values():
            self._open[kind] = self._open.get(kind, 0) + 1
        try:
            await proc.stdin.send_all((canonical_json(message) + "\n").encode())
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ExecAgentError(f"the agent's stdin is closed (exit status {proc.returncode})") from exc

    async def _expect(self, kind: str, emit: Emit | None = None) -> dict[str, Any]:
        """Receive until a message of ``kind``; ``emit`` messages on the way go to ``emit``."""
        assert self._inbox is not None
        while True:
            try:
                message = await self._inbox.receive()
            except trio.EndOfChannel:
                proc = self._proc
                code = proc.returncode if proc is not None else None
                raise ExecAgentError(f"the agent ended (exit status {code})") from None
            if message["type"] == kind:
                return message
            if message["type"] == "emit" and emit is not None:
                await emit(_agent_event(message["event"]))
                continue
            raise ExecAgentError(f"expected {kind!r}, got {message['type']!r}")

    async def _read_stdout(self, stream: trio.abc.ReceiveStream,
                           send: trio.MemorySendChannel[dict[str, Any]]) -> None:
        cfg = self.config
        lines = _Lines(stream, cfg.exec_max_line)
        bucket = _Bucket(cfg.exec_max_lines_per_second, 2 * cfg.exec_max_lines_per_second)
        async with send:
            while True:
                line = await lines.next()
                if line is None:
                    if self._stopping:
                        return
                    proc = self._proc
                    code = await proc.wait() if proc is not None else None
                    raise ExecAgentError(f"the agent exited unexpectedly (exit status {code})")
                if not line.strip():
                    continue
                if not bucket.take():
                    raise ExecAgentError(f"the agent writes more than {cfg.exec_max_lines_per_second:g} "
                                         "lines per second")
                await send.send(self._parse(line))

    def _parse(self, line: bytes) -> dict[str, Any]:
        try:
            message = json.loads(line)
        except ValueError:
            raise ExecAgentError(f"not a JSON line: {line[:80]!r}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ExecAgentError(f"not a message object with a string 'type': {line[:80]!r}")
        kind = message["type"]
        if kind == "emit":
            if not isinstance(message.get("event"), dict):
                raise ExecAgentError("'emit' needs an 'event' object")
            if not self._open.get("event"):
                raise ExecAgentError("'emit' outside a turn")
        elif kind == "snapshot":
            snap = message.get("snapshot")
            if snap is not None and not isinstance(snap, dict):
                raise ExecAgentError("'snapshot' must be an object or null")
        elif kind not in _ANSWERS:
            raise ExecAgentError(f"unknown message type {kind!r}")
        request = _ANSWERS.get(kind)
        if request is not None:
            if not self._open.get(request):
                raise ExecAgentError(f"{kind!r} answers no request")
            self._open[request] -= 1
        return message

    async def _read_stderr(self, stream: trio.abc.ReceiveStream) -> None:
        cfg = self.config
        lines = _Lines(stream, _STDERR_LINE, cut=True)  # cut for the log, never an error
        bucket = _Bucket(cfg.exec_max_lines_per_second, 2 * cfg.exec_max_lines_per_second)
        try:
            await self._log_stderr(lines, bucket)
        finally:
            self._stderr_done.set()

    async def _log_stderr(self, lines: _Lines, bucket: _Bucket) -> None:
        dropped = 0
        while (line := await lines.next()) is not None:
            if bucket.take():
                text = line.decode(errors="replace")
                self.log.info("agent.stderr", line=text, pid=self._proc.pid if self._proc else None)
            else:
                dropped += 1
        if dropped:
            self.log.warning("agent.stderr_dropped", lines=dropped)

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        await self._send({"type": "event", "event": event.payload})
        await self._expect("turn_done", emit)
        await self._send({"type": "snapshot_request"})
        try:
            with trio.fail_after(self.config.exec_reply_timeout):
                reply = await self._expect("snapshot")
        except trio.TooSlowError:
            raise ExecAgentError("the agent did not answer snapshot_request in time") from None
        self._snapshot = reply.get("snapshot")

    def snapshot(self) -> dict[str, Any] | None:
        return self._snapshot


def _agent_event(event: dict[str, Any]) -> dict[str, Any]:
    """What an exec agent emits, as an agent event: the server assigns id and timestamp, and the source is
    the agent's ("agent", or "environment" for observations), never the user's."""
    body = {k: v for k, v in event.items() if k not in ("id", "timestamp")}
    if body.get("source") not in ("agent", "environment"):
        body["source"] = "agent"
    return body


class ExecAgentFactory:
    """``--agent 'exec:COMMAND ARGS'``: one ``ExecAgent`` process per live session."""

    __slots__ = ("argv", "config")

    def __init__(self, argv: Sequence[str], config: RuntimeConfig) -> None:
        if not argv:
            raise ValueError("exec: needs a command")
        self.argv = tuple(argv)
        self.config = config

    @classmethod
    def from_spec(cls, spec: str, config: RuntimeConfig) -> ExecAgentFactory:
        """``"exec:python3 agent.py --flag"`` (split like a POSIX shell would)."""
        _, sep, command = spec.partition(":")
        if not sep:
            raise ValueError(f"not an exec agent spec: {spec!r}")
        return cls(shlex.split(command), config)

    def for_session(self, session_id: str) -> ExecAgent:
        return ExecAgent(self.argv, self.config, session_id)
