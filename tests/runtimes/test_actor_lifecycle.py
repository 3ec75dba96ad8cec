"""A lifespan agent driven by the real supervisor, on the mock clock: the ordering of an incarnation.

Snapshot before the lifespan exits, the exit before the actor ends (registry removal), statuses
STARTING_RUNTIME -> RUNTIME_STARTED -> READY in order, a crash exits the lifespan before the restart, messages
arriving during the exit go to the next incarnation, and agents without a lifespan keep a taskless IDLE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from actors.agent import Emit
from actors.events import StoredEvent
from actors.fanout import READY
from actors.runtimes import RUNTIME_STARTED, STARTING_RUNTIME
from actors.stores.memory import MemoryStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, act, join, running, settle, until


class Journal:
    """What happened, in order, across every incarnation of every ``Recorder``."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.sup: Supervisor | None = None
        self.store: MemoryStore | None = None
        self.exit_delay = 1.0  # mock seconds the runtime takes to stop
        self.crash_next_turn = False


class Recorder:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.n = 0

    @asynccontextmanager
    async def lifespan(self, snapshot: dict[str, Any] | None, nursery: trio.Nursery) -> AsyncIterator[None]:
        j = self.journal
        self.n = (snapshot or {}).get("n", 0)
        j.steps.append(f"enter n={self.n}")
        await trio.sleep(0.5)  # the runtime takes a while to start
        nursery.start_soon(trio.sleep_forever)  # a task the incarnation owns
        try:
            yield
        finally:
            with trio.CancelScope(shield=True):
                assert j.sup is not None and j.store is not None
                record = await j.store.load("s")
                saved = None if record is None or record.snapshot is None else record.snapshot["agent"]
                j.steps.append(f"exit begins (saved={saved}, live={j.sup.info('s') is not None})")
                await trio.sleep(j.exit_delay)
                j.steps.append("exit done")

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        if self.journal.crash_next_turn:
            self.journal.crash_next_turn = False
            raise RuntimeError("agent crashed")
        self.n += 1
        await emit({"action": "message", "args": {"content": f"reply {self.n}"}})

    def snapshot(self) -> dict[str, Any] | None:
        return {"n": self.n}


def statuses(conn: FakeConn) -> list[str]:
    return [e.payload["id"] for e in conn.sent if e.event_id is None and "status_update" in e.payload]


def agent_states(conn: FakeConn) -> list[str]:
    return [e.payload["extras"]["agent_state"] for e in conn.sent
            if e.payload.get("observation") == "agent_state_changed"]


async def test_statuses_in_order_then_snapshot_before_exit_before_the_actor_ends(
        autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    async with MemoryStore() as store, running(store, lambda: Recorder(journal), close_delay=10.0) as sup:
        journal.sup, journal.store = sup, store
        conn = await join(sup, "s")
        await until(lambda: READY in statuses(conn))
        assert statuses(conn) == [STARTING_RUNTIME, RUNTIME_STARTED, READY]
        assert agent_states(conn)[:2] == ["loading", "awaiting_user_input"]
        await act(sup, "s", "one", conn_id="c1")
        await until(lambda: any(p.get("args", {}).get("content") == "reply 1" for p in conn.payloads))
        await until(lambda: "awaiting_user_input" in [p.get("extras", {}).get("agent_state")
                                                      for p in conn.payloads])
        stored_states = [p["extras"]["agent_state"] for p in conn.payloads
                         if p.get("observation") == "agent_state_changed"]
        assert stored_states == ["running", "awaiting_user_input"]  # around the turn, in the log
        # Leave: IDLE with the runtime alive (the incarnation's task holds it), then idle passivation.
        from actors.messages import Leave
        await sup.deliver("s", Leave("c1"), live_only=True)
        await until(lambda: (info := sup.info("s")) is not None and info.state == "idle")
        assert journal.steps == ["enter n=0"]  # still entered while IDLE
        await until(lambda: sup.info("s") is None)
        assert journal.steps == ["enter n=0", "exit begins (saved={'n': 1}, live=True)", "exit done"]
        # Rehydration enters a new incarnation from the snapshot.
        conn2 = await join(sup, "s", "c2", latest=10**6)
        await until(lambda: READY in statuses(conn2))
        assert journal.steps[-1] == "enter n=1"
        assert statuses(conn2) == [STARTING_RUNTIME, RUNTIME_STARTED, READY]


async def test_messages_arriving_during_the_exit_reach_the_next_incarnation(
        autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    journal.exit_delay = 3.0
    async with MemoryStore() as store, running(store, lambda: Recorder(journal), close_delay=None) as sup:
        journal.sup, journal.store = sup, store
        await act(sup, "s", "one")
        await until(lambda: journal.steps and journal.steps[-1] == "enter n=0")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup.passivate, "s")
            await until(lambda: len(journal.steps) == 2)  # the exit has begun
            info = sup.info("s")
            assert info is not None and info.state == "passivating"
            result = await act(sup, "s", "two")  # stashed, then handled by the next incarnation
        assert journal.steps[1:] == ["exit begins (saved={'n': 1}, live=True)", "exit done", "enter n=1"]
        replies: list[Any] = []

        async def replied() -> bool:
            replies[:] = await store.events_after("s", result.event_id, 10)
            return any(e.payload.get("args", {}).get("content") == "reply 2" for e in replies)

        with trio.fail_after(10):
            while not await replied():  # noqa: ASYNC110
                await trio.sleep(0.05)


async def test_a_crash_exits_the_lifespan_before_the_restart(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    async with MemoryStore() as store, running(store, lambda: Recorder(journal), close_delay=None) as sup:
        journal.sup, journal.store = sup, store
        await act(sup, "s", "one")
        await until(lambda: journal.steps == ["enter n=0"])
        await settle()
        journal.crash_next_turn = True
        await act(sup, "s", "two")
        await until(lambda: journal.steps[-1:] == ["enter n=0"] and len(journal.steps) == 4)
        # Exit fully done before the restarted incarnation entered (no snapshot: restored from the log).
        assert journal.steps[1:] == ["exit begins (saved=None, live=True)", "exit done", "enter n=0"]
        assert sup.counters.get("restarts") == 1


async def test_kill_ends_the_runtime_before_returning(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    async with MemoryStore() as store, running(store, lambda: Recorder(journal), close_delay=None) as sup:
        journal.sup, journal.store = sup, store
        await act(sup, "s", "one")
        await until(lambda: journal.steps == ["enter n=0"])
        assert await sup.kill("s")
        assert journal.steps[-1] == "exit done"
        assert sup.info("s") is None


async def test_shutdown_waits_for_the_runtime_exit(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    async with MemoryStore() as store, running(store, lambda: Recorder(journal), close_delay=None) as sup:
        journal.sup, journal.store = sup, store
        await act(sup, "s", "one")
        await until(lambda: journal.steps == ["enter n=0"])
        assert await sup.shutdown(10.0) == 0
        assert journal.steps[1:] == ["exit begins (saved={'n': 1}, live=True)", "exit done"]


async def test_agents_without_a_lifespan_keep_a_taskless_idle(autojump_clock: trio.testing.MockClock) -> None:
    from actors.echo import EchoAgent
    async with MemoryStore() as store, running(store, EchoAgent, close_delay=None) as sup:
        conn = await join(sup, "s")
        await act(sup, "s", "hi", conn_id="c1")
        from actors.messages import Leave
        await sup.deliver("s", Leave("c1"), live_only=True)
        await until(lambda: (info := sup.info("s")) is not None and info.state == "idle")
        await settle()
        actor = sup.registry.get("s")
        assert actor is not None and not actor.running and actor.runtime is None
        assert statuses(conn) == [READY]  # no runtime statuses for them
        assert agent_states(conn) == []
