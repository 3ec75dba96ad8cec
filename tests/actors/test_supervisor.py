"""The supervisor: restarts and budgets, eviction, caps, shutdown, single-flight rehydration, isolation."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
import trio

from actors.echo import EchoAgent
from actors.errors import (
    MailboxFull,
    SessionFailed,
    SessionForbidden,
    SessionNotFound,
    SupervisorClosed,
    TooManySessions,
)
from actors.events import StoredEvent
from actors.messages import Act, ActResult, Join, Leave
from actors.reply import Reply
from actors.restart import RestartConfig, RestartPolicy
from actors.stores.memory import MemoryStore
from actors.supervisor import TOO_MANY_CONVERSATIONS
from tests.actors.conftest import FakeConn, act, join, running, settle, until, user_message


class CrashingAgent:
    """Raises on a user message whose content is 'boom'; answers everything else."""

    starts = 0

    async def start(self, snapshot: dict[str, Any] | None) -> None:
        type(self).starts += 1

    async def handle(self, event: StoredEvent, emit: Any) -> None:
        if event.payload["args"]["content"] == "boom":
            raise RuntimeError("agent exploded")
        await emit({"action": "message", "args": {"content": "ok"}})

    def snapshot(self) -> dict[str, Any] | None:
        return {}


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.concurrent = 0
        self.max_concurrent = 0

    async def load(self, session_id: str) -> Any:
        self.loads += 1
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await trio.sleep(1)
            return await super().load(session_id)
        finally:
            self.concurrent -= 1


async def test_crash_restarts_with_backoff_and_keeps_connections(store: MemoryStore,
                                                                 autojump_clock: Any) -> None:
    restart = RestartConfig(intensity=3, period=60, backoff_initial=1, backoff_factor=2)
    async with running(store, CrashingAgent, restart=restart) as sup:
        conn = await join(sup, "s1")
        t0 = trio.current_time()
        await act(sup, "s1", "boom")
        await settle()
        assert sup.info("s1").state == "crashed"  # type: ignore[union-attr]
        await until(lambda: sup.info("s1").state == "active")  # type: ignore[union-attr]
        assert trio.current_time() - t0 == pytest.approx(1, abs=0.15)
        assert (await act(sup, "s1", "fine")).event_id == 1
        await settle()
        assert conn.closed is None
        assert conn.event_ids == [0, 1, 2]  # nothing lost, nothing repeated across the restart
        assert sup.info("s1").restarts == 1  # type: ignore[union-attr]
        t1 = trio.current_time()
        await act(sup, "s1", "boom")
        await settle()
        await until(lambda: sup.info("s1").state == "active")  # type: ignore[union-attr]
        assert trio.current_time() - t1 == pytest.approx(2, abs=0.15)  # backoff doubled


async def test_restart_budget_exhausted_marks_failed(store: MemoryStore, autojump_clock: Any) -> None:
    restart = RestartConfig(intensity=2, period=60, backoff_initial=0.5)
    async with running(store, CrashingAgent, restart=restart) as sup:
        conn = await join(sup, "s1")
        for _ in range(3):
            await until(lambda: sup.info("s1").state in ("active", "failed"))  # type: ignore[union-attr]
            if sup.info("s1").state == "failed":  # type: ignore[union-attr]
                break
            await act(sup, "s1", "boom")
            await settle()
        assert sup.info("s1").state == "failed"  # type: ignore[union-attr]
        assert conn.closed is not None and conn.statuses[-1] == "STATUS$ERROR"
        assert conn.sent[-1].payload["type"] == "error"
        with pytest.raises(SessionFailed):
            await act(sup, "s1", "again")
        with pytest.raises(SessionFailed):
            await sup.ensure("s1")
        assert sup.counters["failures"] == 1 and sup.counters["restarts"] == 2
        # other sessions are untouched, and an operator kill clears the failure
        assert (await act(sup, "s2", "fine")).event_id == 0
        assert await sup.kill("s1")
        assert (await act(sup, "s1", "fine")).event_id == 3


async def test_temporary_policy_does_not_restart(store: MemoryStore, autojump_clock: Any) -> None:
    restart = RestartConfig(policy=RestartPolicy.TEMPORARY)
    async with running(store, CrashingAgent, restart=restart) as sup:
        conn = await join(sup, "s1")
        await act(sup, "s1", "boom")
        await settle()
        assert sup.info("s1") is None and conn.closed is not None
        assert (await act(sup, "s1", "fine")).event_id == 1  # next message: a fresh incarnation


async def test_waiting_for_a_session_whose_load_always_crashes_fails_once(
    store: MemoryStore, autojump_clock: Any
) -> None:
    """With the temporary policy a load that crashes ends the incarnation; whoever waited for it (a user's
    join, ``ensure``) gets SessionFailed instead of a new incarnation that crashes the same way, forever."""
    loads: list[int] = []

    def unstartable() -> EchoAgent:
        loads.append(1)
        if len(loads) > 5:  # a bug would load it forever: let it load, so the test fails, not hangs
            return EchoAgent()
        raise RuntimeError("the agent cannot start")

    restart = RestartConfig(policy=RestartPolicy.TEMPORARY)
    async with running(store, unstartable, restart=restart) as sup:
        with pytest.raises(SessionFailed):
            await sup.ensure("s1")
        assert loads == [1]
        with pytest.raises(SessionFailed):
            await join(sup, "s1", user_id="u1")  # a user's join waits for the load, too
        assert loads == [1, 1] and sup.info("s1") is None


async def test_a_crash_never_disturbs_other_actors(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, CrashingAgent) as sup:
        others = [await join(sup, f"other{i}") for i in range(5)]
        await act(sup, "bad", "boom")
        for i in range(5):
            await act(sup, f"other{i}", "x")
        await settle()
        assert all(c.event_ids == [0, 1] and c.closed is None for c in others)


async def test_permanent_policy_restarts_after_a_stop_message(store: MemoryStore,
                                                              autojump_clock: Any) -> None:
    from actors.messages import Stop

    async with running(store, restart=RestartConfig(policy=RestartPolicy.PERMANENT)) as sup:
        await sup.ensure("s1")
        await sup.deliver("s1", Stop("normal"))
        await settle()
        rehydrations = sum(n for k, n in sup.counters.items() if k.startswith("rehydrations"))
        assert sup.info("s1") is not None and rehydrations == 2
    async with running(store, restart=RestartConfig(policy=RestartPolicy.TRANSIENT)) as sup:
        await sup.ensure("s2")
        await sup.deliver("s2", Stop("normal"))
        await settle()
        assert sup.info("s2") is None


async def test_eviction_takes_the_coldest_idle_only(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, max_live_sessions=3, close_delay=None) as sup:
        busy = await join(sup, "busy")
        await sup.ensure("cold")
        await trio.sleep(1)
        await sup.ensure("warm")
        await sup.ensure("new")  # evicts "cold"
        await settle()
        assert sup.info("cold") is None
        assert {i.session_id for i in sup.sessions()} == {"busy", "warm", "new"}
        await join(sup, "warm", "c2")
        await join(sup, "new", "c3")
        await settle()
        with pytest.raises(TooManySessions):  # all three have connections: nobody to evict
            await sup.ensure("fourth")
        assert busy.closed is None
        assert sup.counters["evictions.capacity"] == 1


async def test_per_user_cap_evicts_their_least_active_session(store: MemoryStore,
                                                              autojump_clock: Any) -> None:
    async with running(store, max_sessions_per_user=2) as sup:
        first = await join(sup, "a1", "c1", user_id="alice")
        await trio.sleep(1)
        await join(sup, "a2", "c2", user_id="alice")
        await join(sup, "b1", "c3", user_id="bob")
        await trio.sleep(1)
        await join(sup, "a3", "c4", user_id="alice")
        await settle()
        assert sup.info("a1") is None
        assert first.closed is not None and first.statuses[-1] == TOO_MANY_CONVERSATIONS
        assert {i.session_id for i in sup.sessions()} == {"a2", "a3", "b1"}


async def test_owner_checks(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store) as sup:
        await sup.ensure("s1", user_id="alice")
        with pytest.raises(SessionForbidden):
            await join(sup, "s1", user_id="mallory")
        with pytest.raises(SessionNotFound):
            await sup.ensure("nope", create=False)
        assert sup.info("nope") is None
        assert (await sup.ensure("s1", user_id="alice", create=False)).owner == "alice"


async def test_single_flight_rehydration_with_100_racing_joins(autojump_clock: Any) -> None:
    store = CountingStore()
    await store.open()
    async with running(store) as sup:
        conns = [FakeConn(f"c{i}") for i in range(100)]
        async with trio.open_nursery() as nursery:
            for conn in conns:
                nursery.start_soon(sup.deliver, "s1", Join(conn))
        await trio.sleep(2)
        assert store.loads == 1
        assert sup.info("s1").connections == 100  # type: ignore[union-attr]
        assert all(c.statuses == ["STATUS$READY"] for c in conns)


async def test_single_flight_with_owner_checks(autojump_clock: Any) -> None:
    store = CountingStore()
    await store.open()
    async with running(store) as sup:
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(join, sup, "s1", f"c{i}", -1, "alice")
        assert store.loads == 1


async def test_concurrent_rehydrations_are_limited(autojump_clock: Any) -> None:
    store = CountingStore()
    await store.open()
    async with running(store, max_concurrent_rehydrations=3) as sup:
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(sup.ensure, f"s{i}")
        assert store.loads == 20 and store.max_concurrent == 3


async def test_mailbox_full_is_answered(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, mailbox_size=4) as sup:
        await sup.ensure("s1")
        for _ in range(4):
            assert sup.try_tell("s1", Leave("x"))  # queued: the actor has not run yet
        with pytest.raises(MailboxFull):
            sup.try_tell("s1", Leave("x"))
        with pytest.raises(MailboxFull):
            await sup.deliver("s1", Leave("x"))
        assert sup.info("s1").mailbox_depth == 4  # type: ignore[union-attr]
        await settle()
        assert sup.info("s1").mailbox_depth == 0  # type: ignore[union-attr]
        assert not sup.try_tell("unknown", Leave("x"))


async def test_shutdown_passivates_everything(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, EchoAgent) as sup:
        conns = [await join(sup, f"s{i}", f"c{i}") for i in range(5)]
        for i in range(5):
            await act(sup, f"s{i}")
        await sup.ensure("idle-one")
        assert await sup.shutdown(10) == 0
        assert sup.live_count == 0
        assert all(c.closed is not None and c.statuses[-1] == "STATUS$STOPPED" for c in conns)
        for i in range(5):
            record = await store.load(f"s{i}")
            assert record is not None and record.snapshot_event_id == 1
        with pytest.raises(SupervisorClosed):
            await sup.ensure("later")


async def test_shutdown_budget_cancels_stragglers(store: MemoryStore, autojump_clock: Any) -> None:
    class Forever(EchoAgent):
        async def handle(self, event: StoredEvent, emit: Any) -> None:
            await trio.sleep_forever()

    async with running(store, Forever, turn_watchdog=None) as sup:
        await act(sup, "s1")
        start = trio.current_time()
        assert await sup.shutdown(5) == 1
        assert trio.current_time() - start == pytest.approx(5)


async def test_turn_watchdog(store: MemoryStore, autojump_clock: Any) -> None:
    class Forever(EchoAgent):
        async def handle(self, event: StoredEvent, emit: Any) -> None:
            await trio.sleep_forever()

    async with running(store, Forever, turn_watchdog=30) as sup:
        conn = await join(sup, "s1")
        await act(sup, "s1")
        await trio.sleep(29)
        assert sup.info("s1").turn_running  # type: ignore[union-attr]
        await trio.sleep(2)
        assert not sup.info("s1").turn_running  # type: ignore[union-attr]
        assert conn.statuses[-1] == "AGENT_ERROR$TURN_TIMEOUT"
        assert sup.counters["turns_timed_out"] == 1


async def test_actor_logs_do_not_inherit_the_spawners_context(store: MemoryStore,
                                                              autojump_clock: Any) -> None:
    seen: list[dict[str, Any]] = []

    class Peek(EchoAgent):
        async def handle(self, event: StoredEvent, emit: Any) -> None:
            seen.append(structlog.contextvars.get_contextvars())

    async with running(store, Peek) as sup:
        with structlog.contextvars.bound_contextvars(conn_id="spawner-conn"):
            await act(sup, "s1")
        await settle()
    assert seen == [{"session_id": "s1"}]


async def test_idempotent_client_seq(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, close_delay=5) as sup:
        first = await act(sup, "s1", "a", client_seq=7)
        again = await act(sup, "s1", "a", client_seq=7)
        assert again == ActResult(first.event_id, duplicate=True)
        replies = [Reply[ActResult]() for _ in range(3)]
        for r in replies:  # one batch, same seq three times
            assert sup.try_tell("s1", Act(None, user_message("b"), r, client_seq="x"))
        ids = {(await r.get()).event_id for r in replies}
        assert ids == {1}
        await trio.sleep(10)  # passivated: the seqs travel in the snapshot
        assert sup.info("s1") is None
        assert (await act(sup, "s1", "a", client_seq=7)).duplicate
        assert (await act(sup, "s1", "c", client_seq=8)).event_id == 2


async def test_invalid_action_gets_an_error(store: MemoryStore, autojump_clock: Any) -> None:
    from actors.errors import InvalidAction

    async with running(store) as sup:
        reply: Reply[ActResult] = Reply()
        await sup.deliver("s1", Act(None, {"args": {}}, reply))
        with pytest.raises(InvalidAction):
            await reply.get()
        assert (await act(sup, "s1")).event_id == 0


async def test_user_event_shape(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, EchoAgent) as sup:
        conn = await join(sup, "s1")
        await act(sup, "s1", "hello")
        await settle()
        user, agent = conn.payloads
        assert user["action"] == "message" and user["args"] == {"content": "hello"}
        assert user["source"] == "user" and user["id"] == 0 and user["message"] == "hello"
        assert "T" in user["timestamp"]
        assert agent["source"] == "agent" and agent["id"] == 1 and agent["action"] == "message"
        assert agent["args"]["content"] == "echo: hello" and agent["message"] == "echo: hello"


async def test_metrics_hook(store: MemoryStore, autojump_clock: Any) -> None:
    from actors.config import SupervisorConfig
    from actors.supervisor import Supervisor

    seen: list[tuple[str, int, dict[str, str]]] = []
    durations: list[str] = []
    sup = Supervisor(store, EchoAgent, SupervisorConfig(close_delay=1, close_delay_jitter=0),
                     on_event=lambda k, n, labels: seen.append((k, n, labels)),
                     on_observe=lambda k, seconds, labels: durations.append(k))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await act(sup, "s1")
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert ("events", 1, {}) in seen and ("passivations", 1, {"reason": "idle"}) in seen
    assert sum(n for k, n in sup.counters.items() if k.startswith("rehydrations")) == 1
    assert durations == ["rehydrate_seconds", "turn_seconds"]
