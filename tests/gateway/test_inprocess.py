"""The session gateway's fine-grained behaviour, in-process on trio's MockClock (the test harness):
status updates and when they come, exact passivation timing and rehydration, replay under concurrent
traffic, idempotency across passivation, the per-user cap and the turn watchdog."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actors.agent import Emit
from actors.events import StoredEvent
from actors.restart import RestartConfig
from actors.stores.memory import MemoryStore
from server.client import ConnectError, DisconnectedError
from server.testing import (
    collect_oh_events,
    event_ids,
    is_status,
    next_oh_event,
    statuses,
    user_message,
)
from server.testing.plugin import MakeSupervisor

READY = "STATUS$READY"


async def test_a_live_join_gets_ready_first(make_supervisor: MakeSupervisor) -> None:
    server = await make_supervisor()
    client = await server.connect("fresh")
    ready = {"status_update": True, "type": "info", "id": READY, "message": "ready"}
    assert await next_oh_event(client) == ready


async def test_passivation_happens_exactly_at_close_delay_and_rehydration_continues_ids(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(close_delay=120)
    client = await server.connect("timed")
    await next_oh_event(client)
    await client.call("oh_user_action", user_message("hi"))
    await collect_oh_events(client, until=1)
    await client.aclose()
    await server.wait_idle("timed")
    idle_since = trio.current_time()
    await trio.sleep(119)
    assert server.info("timed").state == "idle"  # type: ignore[union-attr]
    await server.wait_passivated("timed", timeout=2)
    assert trio.current_time() - idle_since == pytest.approx(120, abs=0.1)

    again = await server.connect("timed", latest_event_id=1)
    assert statuses([await next_oh_event(again)]) == [READY]  # nothing missed: READY at once
    assert await again.call("oh_user_action", user_message("again")) == {"id": 2}


async def test_a_connected_session_never_passivates(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(close_delay=5)
    client = await server.connect("held")
    await next_oh_event(client)
    await trio.sleep(1000)  # forty heartbeats go by over the real socket, in virtual time
    assert server.info("held").state == "active"  # type: ignore[union-attr]
    assert client.connected
    assert await client.call("oh_user_action", user_message("still here")) == {"id": 0}


async def test_replay_under_concurrent_traffic_has_no_gap_and_no_duplicate(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(agent="none", replay_page_size=7)
    producer = await server.connect("busy")
    await next_oh_event(producer)
    for i in range(50):
        await producer.call("oh_user_action", user_message(f"old-{i}"))
    async with trio.open_nursery() as nursery:

        async def produce() -> None:
            for i in range(50):
                await producer.call("oh_user_action", user_message(f"new-{i}"))

        nursery.start_soon(produce)
        late = await server.connect("busy", latest_event_id=9)  # replays 10.. while new ones arrive
    events = await collect_oh_events(late, until=99)
    assert event_ids(events) == list(range(10, 100))
    assert statuses(events) == [READY]  # one READY, when the replay caught up with the live head


async def test_client_seq_survives_passivation(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(close_delay=10)
    client = await server.connect("idem")
    pay = {"action": "message", "args": {"content": "pay"}, "client_seq": "tx-1"}
    assert await client.call("oh_user_action", pay) == {"id": 0}
    await client.aclose()
    await server.advance_past_close_delay("idem")
    again = await server.connect("idem")
    assert await again.call("oh_user_action", pay) == {"id": 0, "duplicate": True}  # remembered


@pytest.mark.parametrize(
    ("latest", "expected_ids"), [("5", []), ("999", []), ("abc", [0, 1]), ("-7", [0, 1])]
)
async def test_latest_event_id_edge_values(
    make_supervisor: MakeSupervisor, latest: str, expected_ids: list[int]
) -> None:
    server = await make_supervisor()
    first = await server.connect("edges")
    await first.call("oh_user_action", user_message("x"))
    await collect_oh_events(first, until=1)
    client = await server.connect("edges", latest_event_id=None, query={"latest_event_id": latest})
    events = await collect_oh_events(client, until=is_status(READY))
    assert event_ids(events) == expected_ids  # ahead of the head: nothing; not a number or < -1: all


async def test_per_user_cap_closes_the_older_session_with_a_status(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(api_keys={"k": "alice"}, max_sessions_per_user=1)
    older = await server.connect("first", token="k")
    await next_oh_event(older)
    newer = await server.connect("second", token="k")
    assert is_status(READY)(await next_oh_event(newer))
    status = await next_oh_event(older)
    assert status["status_update"] is True and status["type"] == "error"
    assert status["id"] == "AGENT_ERROR$TOO_MANY_CONVERSATIONS"
    with pytest.raises(DisconnectedError):
        await next_oh_event(older)


class SlowSnapshotStore(MemoryStore):
    async def save_snapshot(self, session_id: str, snapshot: dict[str, Any], event_id: int) -> None:
        await trio.sleep(1)
        await super().save_snapshot(session_id, snapshot, event_id)


async def test_per_user_cap_keeps_the_newer_session(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    # Snapshots take a (virtual) second, so the evicted connection's disconnect always arrives while the
    # evicted session is still PASSIVATING: the window is real, only narrower, with a fast store.
    server = await make_supervisor(
        store=SlowSnapshotStore(), api_keys={"k": "alice"}, max_sessions_per_user=1
    )
    older = await server.connect("first", token="k")
    await next_oh_event(older)
    newer = await server.connect("second", token="k")
    await next_oh_event(newer)
    with pytest.raises(DisconnectedError):
        while True:
            await next_oh_event(older)
    await trio.sleep(10)  # every passivation and rehydration has run its course
    # The Leave of the evicted connection, stashed while "first" was PASSIVATING, must not rehydrate
    # "first" (whose load would evict "second", the user's cap being 1, closing the newer connection too).
    assert newer.connected
    assert await newer.call("oh_user_action", user_message("ok")) == {"id": 0}


class StuckAgent:
    async def start(self, snapshot: dict[str, Any] | None) -> None:
        pass

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        await trio.sleep_forever()

    def snapshot(self) -> dict[str, Any] | None:
        return None


async def test_turn_watchdog_reports_a_timeout_status(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(agent=StuckAgent, turn_watchdog=30)
    client = await server.connect("stuck")
    await next_oh_event(client)
    start = trio.current_time()
    await client.call("oh_user_action", user_message("do it"))
    events = await collect_oh_events(client, until=is_status("AGENT_ERROR$TURN_TIMEOUT"), timeout=60)
    assert events[-1]["type"] == "error"
    assert trio.current_time() - start == pytest.approx(30, abs=0.5)


async def test_graceful_shutdown_tells_connections_stopped(make_supervisor: MakeSupervisor) -> None:
    server = await make_supervisor()
    client = await server.connect("stopping")
    await next_oh_event(client)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.app.shutdown)
        stopped = await next_oh_event(client)
    assert stopped["id"] == "STATUS$STOPPED" and stopped["type"] == "info"


async def test_an_action_that_cannot_be_utf8_encoded_is_refused_and_the_session_goes_on(
    make_supervisor: MakeSupervisor,
) -> None:
    server = await make_supervisor()
    client = await server.connect("surrogate")
    await next_oh_event(client)
    # Valid JSON on the wire ("\ud800" escaped), but a lone surrogate has no UTF-8 encoding.
    bad = {"action": "message", "args": {"content": "\ud800"}}
    with trio.fail_after(5):
        ack = await client.call("oh_user_action", bad)
    assert ack["msg_id"] == "ACTION$INVALID"
    assert await client.call("oh_user_action", user_message("fine")) == {"id": 0}


class _GatedLoad(MemoryStore):
    """A store whose loads wait for a gate: a rehydration that takes as long as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()
        self.entered = trio.Event()

    async def load(self, session_id: str) -> Any:
        self.entered.set()
        await self.gate.wait()
        return await super().load(session_id)


async def test_a_client_gone_during_rehydration_does_not_keep_the_session_alive(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    store = _GatedLoad()
    server = await make_supervisor(store=store, close_delay=5)
    async with trio.open_nursery() as nursery:

        async def impatient_client() -> None:
            with trio.move_on_after(1):  # gives up while the connect handler still waits for the load
                await server.connect("slow")

        nursery.start_soon(impatient_client)
        await store.entered.wait()
        await trio.sleep(2)
    store.gate.set()
    # The Join and then the Leave reach the session once it is loaded: it goes idle and passivates.
    await server.wait_passivated("slow", timeout=30)
    assert server.app.gateway.connection_count == 0


class CrashingAgent:
    async def start(self, snapshot: dict[str, Any] | None) -> None:
        pass

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        raise RuntimeError("the agent broke")

    def snapshot(self) -> dict[str, Any] | None:
        return None


async def test_a_session_that_keeps_crashing_fails_and_refuses_new_connections(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(agent=CrashingAgent, restart=RestartConfig(intensity=1, period=60))
    client = await server.connect("doomed")
    await next_oh_event(client)
    assert await client.call("oh_user_action", user_message("one")) == {"id": 0}  # stored, then it crashes
    await trio.sleep(1)  # virtual time: past the restart backoff (0.1 s)
    info = server.info("doomed")
    assert info is not None and info.restarts == 1 and info.state == "active"
    await client.call("oh_user_action", user_message("two"))  # the second crash spends the budget
    events = await collect_oh_events(client, until=is_status("STATUS$ERROR"), timeout=30)
    assert events[-1]["type"] == "error"
    with pytest.raises(ConnectError) as refused:
        await server.connect("doomed")
    assert refused.value.data == {"msg_id": "STATUS$ERROR_SESSION_FAILED"}
    other = await server.connect("healthy")  # other sessions are not disturbed
    assert statuses([await next_oh_event(other)]) == [READY]


async def test_actions_beyond_the_agent_backlog_are_refused_with_agent_busy(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(agent=StuckAgent, agent_queue_size=1)
    client = await server.connect("busy")
    await next_oh_event(client)
    acks = [await client.call("oh_user_action", user_message(str(n))) for n in range(3)]
    assert acks[:2] == [{"id": 0}, {"id": 1}]
    assert acks[2]["msg_id"] == "ACTION$AGENT_BUSY"
