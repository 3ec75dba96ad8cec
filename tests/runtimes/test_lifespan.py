"""The agent lifespan adapter: enter/exit ordering, old agents through ``start``, tasks cancelled at exit,
errors reaching the owner, and a process's grace period then SIGKILL (MockClock where time matters)."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from actors.echo import EchoAgent
from actors.events import StoredEvent
from actors.lifespan import LifespanAgent, agent_lifespan, create_agent
from actors.runtimes.process import end_process, owned_process
from tests.runtimes.conftest import Emitted, my_descendants, user_event

IGNORES_TERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(1000)\n"
)
STOPS_ON_TERM = "import sys, time\nprint('ready', flush=True)\ntime.sleep(1000)\n"


class Recording:
    """An agent with a lifespan that logs every step and owns a background task."""

    def __init__(self, log: list[str], *, fail_task: bool = False) -> None:
        self.log = log
        self.fail_task = fail_task

    @asynccontextmanager
    async def lifespan(self, snapshot: dict[str, Any] | None, nursery: trio.Nursery) -> AsyncIterator[None]:
        self.log.append(f"enter {snapshot}")
        nursery.start_soon(self._background)
        try:
            yield
        finally:
            self.log.append("exit")

    async def _background(self) -> None:
        self.log.append("task started")
        try:
            if self.fail_task:
                await trio.sleep(5)
                raise RuntimeError("background task failed")
            await trio.sleep_forever()
        finally:
            self.log.append("task ended")

    async def handle(self, event: StoredEvent, emit: Any) -> None:
        self.log.append(f"handle {event.id}")

    def snapshot(self) -> dict[str, Any] | None:
        return {"n": len(self.log)}


async def test_lifespan_order_enter_body_agent_exit_then_its_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    agent = Recording(log)
    assert isinstance(agent, LifespanAgent)
    async with trio.open_nursery() as nursery:
        async with agent_lifespan(agent, {"k": 1}, nursery):
            await trio.testing.wait_all_tasks_blocked()
            log.append("body")
            event = user_event("message", content="x")
            await agent.handle(event, Emitted())
            await trio.sleep(3600)  # an hour of (virtual) incarnation: the task is still there
            assert log[-1] == f"handle {event.id}"
        log.append("after")
        assert nursery.child_tasks == frozenset()  # nothing of the agent's outlives the block
    assert log == ["enter {'k': 1}", "task started", "body", f"handle {event.id}", "exit", "task ended",
                   "after"]


async def test_an_agent_with_only_start_keeps_working() -> None:
    agent = EchoAgent()
    emitted = Emitted()
    async with trio.open_nursery() as nursery, agent_lifespan(agent, {"replies": 5}, nursery):
        await agent.handle(user_event("message", content="hi"), emitted)
    assert emitted.payloads[0]["args"]["content"] == "echo: hi"
    assert agent.snapshot() == {"replies": 6}


async def test_create_agent_calls_plain_factories_and_session_factories() -> None:
    class PerSession:
        def for_session(self, session_id: str) -> str:
            return f"agent of {session_id}"

    assert isinstance(create_agent(EchoAgent, "s"), EchoAgent)
    assert create_agent(PerSession(), "s9") == "agent of s9"


async def test_a_failing_agent_task_crashes_the_owner(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="background task failed"),
                            flatten_subgroups=True):
        async with (
            trio.open_nursery() as nursery,
            agent_lifespan(Recording(log, fail_task=True), None, nursery),
        ):
            await trio.sleep_forever()
    assert log == ["enter None", "task started", "task ended", "exit"]


async def test_a_failing_start_raises_from_enter() -> None:
    class Broken:
        async def start(self, snapshot: dict[str, Any] | None) -> None:
            raise ValueError("bad snapshot")

    entered = False
    with pytest.RaisesGroup(ValueError, allow_unwrapped=True, flatten_subgroups=True):
        async with trio.open_nursery() as nursery, agent_lifespan(Broken(), None, nursery):  # type: ignore[arg-type]
            entered = True
    assert not entered


async def _ready(proc: trio.Process) -> None:
    assert proc.stdout is not None
    assert (await proc.stdout.receive_some(100)).startswith(b"ready")


async def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with owned_process([sys.executable, "-c", IGNORES_TERM], grace=7.0) as proc:
        await _ready(proc)
        started = trio.current_time()
        code = await end_process(proc, grace=7.0)
    assert code == -signal.SIGKILL
    assert trio.current_time() - started == pytest.approx(7.0)
    assert my_descendants() == set()


async def test_a_process_that_stops_on_sigterm_gets_no_sigkill() -> None:
    async with owned_process([sys.executable, "-c", STOPS_ON_TERM], grace=60.0) as proc:
        await _ready(proc)
        started = trio.current_time()
        code = await end_process(proc, grace=60.0)
    assert code == -signal.SIGTERM
    assert trio.current_time() - started < 30


class OwnsAProcess:
    """A lifespan agent whose process lives in a task of its nursery (and ignores SIGTERM)."""

    def __init__(self) -> None:
        self.proc: trio.Process | None = None

    @asynccontextmanager
    async def lifespan(self, snapshot: dict[str, Any] | None, nursery: trio.Nursery) -> AsyncIterator[None]:
        await nursery.start(self._hold)
        yield  # exit leaves the process to the adapter, which cancels the task holding it

    async def _hold(self, *, task_status: trio.TaskStatus[None]) -> None:
        async with owned_process([sys.executable, "-c", IGNORES_TERM], grace=4.0) as proc:
            self.proc = proc
            await _ready(proc)
            task_status.started()
            await trio.sleep_forever()

    async def handle(self, event: StoredEvent, emit: Any) -> None: ...

    def snapshot(self) -> dict[str, Any] | None:
        return None


async def test_lifespan_exit_waits_for_the_grace_then_kills(autojump_clock: trio.testing.MockClock) -> None:
    agent = OwnsAProcess()
    async with trio.open_nursery() as nursery:
        async with agent_lifespan(agent, None, nursery):
            assert agent.proc is not None and agent.proc.returncode is None
            exit_started = trio.current_time()
        # The block returns only once the process is gone: after the grace period, by SIGKILL.
        assert agent.proc.returncode == -signal.SIGKILL
        assert trio.current_time() - exit_started == pytest.approx(4.0)
    assert my_descendants() == set()


async def test_cancelling_the_owner_still_ends_the_process(autojump_clock: trio.testing.MockClock) -> None:
    agent = OwnsAProcess()
    with trio.CancelScope() as owner:
        async with trio.open_nursery() as nursery, agent_lifespan(agent, None, nursery):
            cancelled_at = trio.current_time()
            owner.cancel()  # the actor is cancelled (a kill, a shutdown): the agent's exit still runs
            await trio.sleep_forever()
    assert trio.current_time() - cancelled_at == pytest.approx(4.0)
    assert agent.proc is not None and agent.proc.returncode == -signal.SIGKILL
    assert my_descendants() == set()


def test_the_runtimes_are_lifespan_agents(tmp_path: Any) -> None:
    from actors.runtimes import ExecAgentFactory, RuntimeConfig, ShellAgentFactory

    config = RuntimeConfig(workspaces_dir=tmp_path)
    assert isinstance(create_agent(ShellAgentFactory(config), "s"), LifespanAgent)
    assert isinstance(create_agent(ExecAgentFactory(["true"], config), "s"), LifespanAgent)
    assert not isinstance(EchoAgent(), LifespanAgent)
