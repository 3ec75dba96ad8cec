"""Every row of the lifecycle table and the idle clock rules, on the MockClock."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors.echo import EchoAgent
from actors.events import StoredEvent
from actors.messages import ActorInfo, Inspect, Leave, Passivate
from actors.reply import Reply
from actors.stores.memory import MemoryStore
from tests.actors.conftest import act, join, running, settle, until


class SlowAgent:
    """Each turn sleeps ``seconds`` then answers."""

    seconds = 50.0

    async def start(self, snapshot: dict[str, Any] | None) -> None:
        pass

    async def handle(self, event: StoredEvent, emit: Any) -> None:
        await trio.sleep(self.seconds)
        await emit({"action": "message", "args": {"content": "done"}})

    def snapshot(self) -> dict[str, Any] | None:
        return None


async def test_loading_without_connection_goes_idle(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, close_delay=10) as sup:
        info = await sup.ensure("s1")
        assert info.state == "idle"
        assert info.idle_deadline_in == pytest.approx(10)
        assert info.event_count == 0


async def test_loading_with_a_join_goes_active(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store) as sup:
        conn = await join(sup, "s1")
        await settle()
        info = sup.info("s1")
        assert info is not None and info.state == "active" and info.connections == 1
        assert conn.statuses == ["STATUS$READY"]


async def test_last_leave_starts_the_idle_clock(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, close_delay=30) as sup:
        conn = await join(sup, "s1")
        await trio.sleep(100)  # connected: no clock, however long
        assert sup.info("s1").state == "active"  # type: ignore[union-attr]
        start = trio.current_time()
        await sup.deliver("s1", Leave(conn.id, "bye"))
        await settle()
        assert sup.info("s1").state == "idle"  # type: ignore[union-attr]
        await until(lambda: sup.info("s1") is None, 1)
        assert trio.current_time() - start == pytest.approx(30, abs=1)
        assert sup.counters["passivations.idle"] == 1


async def test_join_cancels_the_idle_clock(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, close_delay=30) as sup:
        await sup.ensure("s1")
        await trio.sleep(20)
        conn = await join(sup, "s1")
        await settle()
        assert sup.info("s1").state == "active"  # type: ignore[union-attr]
        await trio.sleep(100)
        assert sup.info("s1").state == "active"  # type: ignore[union-attr]
        await sup.deliver("s1", Leave(conn.id))
        await trio.sleep(29)
        assert sup.info("s1").state == "idle"  # type: ignore[union-attr]  # a fresh 30 s
        await trio.sleep(2)
        assert sup.info("s1") is None


async def test_act_cancels_the_idle_clock_and_restarts_it_after(store: MemoryStore,
                                                                autojump_clock: Any) -> None:
    async with running(store, close_delay=30) as sup:
        await sup.ensure("s1")
        await trio.sleep(25)
        result = await act(sup, "s1")
        assert result.event_id == 0
        await settle()
        info = sup.info("s1")
        assert info is not None and info.state == "idle"
        assert info.idle_deadline_in == pytest.approx(30)


async def test_inspect_and_stray_leave_do_not_reset_the_clock(store: MemoryStore,
                                                              autojump_clock: Any) -> None:
    async with running(store, close_delay=30) as sup:
        await sup.ensure("s1")
        await trio.sleep(20)
        reply: Reply[ActorInfo] = Reply()
        await sup.deliver("s1", Inspect(reply))
        assert (await reply.get()).state == "idle"
        await sup.deliver("s1", Leave("nobody"))
        await settle()
        assert sup.info("s1").idle_deadline_in == pytest.approx(10)  # type: ignore[union-attr]
        await trio.sleep(11)
        assert sup.info("s1") is None


async def test_no_idle_clock_while_a_turn_is_in_flight(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, SlowAgent, close_delay=10) as sup:
        await act(sup, "s1")
        await settle()
        await trio.sleep(40)  # the 50 s turn is still running, no connection: still not idle
        info = sup.info("s1")
        assert info is not None and info.state == "active" and info.turn_running
        await trio.sleep(11)  # the turn ends at 50 s -> idle
        info = sup.info("s1")
        assert info is not None and info.state == "idle" and info.event_count == 2
        await trio.sleep(11)
        assert sup.info("s1") is None


async def test_inspect_answers_during_a_long_turn(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, SlowAgent) as sup:
        conn = await join(sup, "s1")
        await act(sup, "s1")
        start = trio.current_time()
        reply: Reply[ActorInfo] = Reply()
        await sup.deliver("s1", Inspect(reply))
        info = await reply.get()
        assert info.turn_running and info.connections == ("c1",)
        assert trio.current_time() - start < 1
        await sup.deliver("s1", Leave(conn.id))
        other = await join(sup, "s1", "c2")
        await settle()
        assert other.statuses == ["STATUS$READY"] and other.event_ids == [0]


async def test_close_delay_never(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, close_delay=None) as sup:
        info = await sup.ensure("s1")
        assert info.state == "idle" and info.idle_deadline_in is None
        await trio.sleep(10**6)
        assert sup.info("s1").state == "idle"  # type: ignore[union-attr]


async def test_jitter_spreads_deadlines(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, close_delay=10, close_delay_jitter=5) as sup:
        deadlines = {(await sup.ensure(f"s{i}")).idle_deadline_in for i in range(20)}
        assert all(10 <= d <= 15 for d in deadlines if d is not None)
        assert len(deadlines) > 10


async def test_passivation_persists_and_ids_continue(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, EchoAgent, close_delay=5) as sup:
        assert (await act(sup, "s1", "a")).event_id == 0
        await trio.sleep(10)
        assert sup.info("s1") is None
        record = await store.load("s1")
        assert record is not None and record.last_event_id == 1
        assert record.snapshot is not None and record.snapshot["agent"] == {"replies": 1}
        assert record.snapshot_event_id == 1
        assert (await act(sup, "s1", "b")).event_id == 2  # rehydrated
        conn = await join(sup, "s1")
        await settle()
        assert conn.event_ids == [0, 1, 2, 3]
        assert conn.payloads[3]["args"]["content"] == "echo: b"
        assert sum(n for k, n in sup.counters.items() if k.startswith("rehydrations")) == 2


async def test_operator_passivate_of_an_active_session(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, SlowAgent) as sup:
        conn = await join(sup, "s1")
        await act(sup, "s1")
        start = trio.current_time()
        assert await sup.passivate("s1", "operator") == "passivated"
        assert trio.current_time() - start == pytest.approx(50)  # waited for the turn
        assert conn.closed == "operator" and conn.statuses[-1] == "STATUS$STOPPED"
        record = await store.load("s1")
        assert record is not None and record.last_event_id == 1 and record.snapshot_event_id == 1


async def test_message_during_hard_passivation_goes_to_next_incarnation(store: MemoryStore,
                                                                         autojump_clock: Any) -> None:
    async with running(store, SlowAgent) as sup:
        await act(sup, "s1")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup.passivate, "s1", "operator")
            await trio.sleep(10)
            assert sup.info("s1").state == "passivating"  # type: ignore[union-attr]
            conn = await join(sup, "s1", "late")
        await settle()
        info = sup.info("s1")
        assert info is not None and info.state == "active"
        assert conn.event_ids == [0, 1] and conn.closed is None


async def test_soft_passivate_is_ignored_when_not_idle(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store) as sup:
        await join(sup, "s1")
        await sup.deliver("s1", Passivate("idle"))
        await settle()
        assert sup.info("s1").state == "active"  # type: ignore[union-attr]


async def test_kill_skips_the_snapshot(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, EchoAgent) as sup:
        conn = await join(sup, "s1")
        await act(sup, "s1")
        await settle()
        assert await sup.kill("s1")
        assert sup.info("s1") is None
        assert conn.closed is not None and "STATUS$STOPPED" in conn.statuses
        record = await store.load("s1")
        assert record is not None and record.snapshot is None and record.last_event_id == 1
        assert (await act(sup, "s1")).event_id == 2
        assert not await sup.kill("unknown")
