"""The shell runtime driven by the real supervisor (real bash, real time, SQLite store): commands through
the actor, C-c reaching a running command, the workspace kept across passivation, no process left after
it, a crashed session's shell ended before the restart, and two sessions' shells isolated."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from actors.agent import Emit
from actors.config import SupervisorConfig
from actors.events import StoredEvent
from actors.messages import Act, ActResult, Leave
from actors.reply import Reply
from actors.runtimes import RuntimeConfig, ShellAgent, ShellAgentFactory
from actors.stores.sqlite import SqliteStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, join
from tests.runtimes.conftest import my_descendants


@asynccontextmanager
async def shell_server(tmp_path: Path, config: RuntimeConfig, factory: Any = None,
                       **sup: Any) -> AsyncIterator[Supervisor]:
    sup.setdefault("close_delay_jitter", 0.0)
    sup.setdefault("close_delay", 0.3)
    async with SqliteStore(str(tmp_path / "s.db")) as store:
        supervisor = Supervisor(store, factory or ShellAgentFactory(config), SupervisorConfig(**sup))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            yield supervisor
            await supervisor.shutdown(10.0)


async def run(sup: Supervisor, sid: str, command: str, **args: Any) -> int:
    reply: Reply[ActResult] = Reply()
    action = {"action": "run", "args": {"command": command, **args}}
    await sup.deliver(sid, Act("c1", action, reply))
    return (await reply.get()).event_id


async def final(conn: FakeConn, cause: int) -> dict[str, Any]:
    with trio.fail_after(20):
        while True:
            for p in conn.payloads:
                if p.get("cause") == cause and p["extras"]["metadata"]["exit_code"] != -1:
                    return p
            await trio.sleep(0.02)


def outputs(conn: FakeConn, cause: int) -> list[dict[str, Any]]:
    return [p for p in conn.payloads if p.get("cause") == cause]


async def gone(sup: Supervisor, sid: str) -> None:
    with trio.fail_after(20):
        while sup.info(sid) is not None:  # noqa: ASYNC110
            await trio.sleep(0.02)


async def test_commands_stream_then_exit_code_and_c_c_interrupts(
        tmp_path: Path, config: RuntimeConfig) -> None:
    async with shell_server(tmp_path, config, close_delay=None) as sup:
        conn = await join(sup, "a")
        first = await run(sup, "a", "echo hello; false")
        assert (await final(conn, first))["extras"]["metadata"]["exit_code"] == 1
        assert "hello" in (await final(conn, first))["content"]
        streaming = await run(sup, "a", "for i in 1 2 3; do echo line$i; sleep 0.3; done")
        result = await final(conn, streaming)
        assert result["extras"]["metadata"]["exit_code"] == 0
        parts = outputs(conn, streaming)
        assert parts[0]["extras"]["metadata"]["exit_code"] == -1  # streamed while running
        assert "line1line2line3" in "".join(p["content"] for p in parts).replace("\n", "")
        timed = await run(sup, "a", "sleep 30", timeout=1)
        assert (await final(conn, timed))["extras"]["metadata"]["exit_code"] != 0
        long = await run(sup, "a", "sleep 30")
        await trio.sleep(0.3)
        with trio.fail_after(5):
            await run(sup, "a", "C-c", is_input=True)  # intercepted: no turn of its own
            interrupted = await final(conn, long)
        assert interrupted["extras"]["metadata"]["exit_code"] != 0
        assert "interrupted" in interrupted["extras"]["metadata"]["suffix"]
        after = await run(sup, "a", "echo still here")
        assert "still here" in (await final(conn, after))["content"]
        info = sup.info("a")
        assert info is not None and info.runtime is not None and info.runtime["pid"] > 0


async def test_workspace_and_directory_survive_passivation_and_no_process_is_left(
        tmp_path: Path, config: RuntimeConfig) -> None:
    async with shell_server(tmp_path, config) as sup:
        conn = await join(sup, "w")
        cause = await run(sup, "w", "mkdir -p sub && cd sub && echo kept > file.txt && pwd")
        await final(conn, cause)
        pid = sup.info("w").runtime["pid"]  # type: ignore[union-attr]
        assert pid in my_descendants()
        await sup.deliver("w", Leave("c1"), live_only=True)
        await gone(sup, "w")  # passivated after close_delay
        assert my_descendants() == set()  # bash and all below it ended before the actor did
        conn2 = await join(sup, "w", "c1", latest=10**6)
        cause = await run(sup, "w", "pwd; cat file.txt")
        out = (await final(conn2, cause))["content"]
        assert out.split() == [str(config.workspaces / "w" / "sub"), "kept"]


def _exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


class CrashingShell(ShellAgent):
    factory: CrashingFactory

    @asynccontextmanager
    async def lifespan(self, snapshot: dict[str, Any] | None, nursery: trio.Nursery) -> AsyncIterator[None]:
        # Which shells of earlier incarnations still exist (in /proc) when this one starts.
        self.factory.alive_at_enter.append([p for p in self.factory.pids if _exists(p)])
        async with super().lifespan(snapshot, nursery):
            assert self.shell is not None
            self.factory.pids.append(self.shell.pid)
            yield

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        if event.payload.get("args", {}).get("command") == "crash!":
            raise RuntimeError("agent bug")
        await super().handle(event, emit)


class CrashingFactory(ShellAgentFactory):
    __slots__ = ("alive_at_enter", "pids")

    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.pids: list[int] = []
        self.alive_at_enter: list[list[int]] = []

    def for_session(self, session_id: str) -> ShellAgent:
        agent = CrashingShell(self.config, session_id)
        agent.factory = self
        return agent


async def test_a_crashed_sessions_shell_is_ended_before_the_restart(
        tmp_path: Path, config: RuntimeConfig) -> None:
    factory = CrashingFactory(config)
    async with shell_server(tmp_path, config, factory, close_delay=None) as sup:
        conn = await join(sup, "c")
        await final(conn, await run(sup, "c", "true"))
        await run(sup, "c", "crash!")
        with trio.fail_after(20):
            while len(factory.pids) < 2:  # noqa: ASYNC110
                await trio.sleep(0.02)
        assert factory.alive_at_enter == [[], []]  # the first shell was gone when the restart began
        assert factory.pids[0] not in my_descendants()
        assert sup.counters.get("restarts") == 1
        after = await run(sup, "c", "echo back")
        assert "back" in (await final(conn, after))["content"]


async def test_two_sessions_shells_are_isolated(tmp_path: Path, config: RuntimeConfig) -> None:
    async with shell_server(tmp_path, config, close_delay=None) as sup:
        a, b = await join(sup, "one"), await join(sup, "two")
        await final(a, await run(sup, "one", "export SECRET=one; echo a > mine"))
        cause = await run(sup, "two", 'pwd; echo "[$SECRET]"; ls')
        out = (await final(b, cause))["content"].split()
        assert out == [str(config.workspaces / "two"), "[]"]
        assert (config.workspaces / "one" / "mine").read_text() == "a\n"
