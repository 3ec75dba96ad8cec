"""The test harness as a user meets it: a custom Agent, defined here, tested through the pytest fixtures.

This is the example docs/testing.md walks through; keep the two in step.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actors.agent import Emit, agent_message
from actors.events import StoredEvent
from server.client import ConnectError
from server.testing import (
    SupervisorHandle,
    collect_oh_events,
    event_ids,
    is_status,
    next_oh_event,
    open_supervisor,
    statuses,
    user_message,
)
from server.testing.plugin import MakeSupervisor


class TallyAgent:
    """Adds up the numbers users send (``{"action": "add", "args": {"n": 3}}``) and answers the total. The
    total survives passivation through ``snapshot``. ``{"action": "think", "args": {"seconds": s}}`` takes
    ``s`` seconds before answering (a long turn)."""

    def __init__(self) -> None:
        self.total = 0
        self.starts: list[dict[str, Any] | None] = []

    async def start(self, snapshot: dict[str, Any] | None) -> None:
        self.starts.append(snapshot)
        self.total = int((snapshot or {}).get("total", 0))

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        action = event.payload.get("action")
        args = event.payload.get("args") or {}
        if action == "add":
            self.total += int(args["n"])
            await emit(agent_message(f"total: {self.total}", total=self.total))
        elif action == "think":
            await trio.sleep(float(args["seconds"]))
            await emit(agent_message("done thinking"))

    def snapshot(self) -> dict[str, Any] | None:
        return {"total": self.total}


def add(n: int) -> dict[str, Any]:
    return {"action": "add", "args": {"n": n}}


async def test_the_default_server_echoes(connect: Any) -> None:
    client = await connect("conv-echo")
    assert is_status("STATUS$READY")(await next_oh_event(client))
    ack = await client.call("oh_user_action", user_message("hello"))
    assert ack == {"id": 0}
    events = await collect_oh_events(client, until=1)
    assert [(e["id"], e["source"], e["message"]) for e in events] == [
        (0, "user", "hello"), (1, "agent", "echo: hello")]


async def test_custom_agent_answers_and_keeps_its_state_across_passivation(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(agent=TallyAgent, close_delay=300)
    client = await server.connect("tally")
    await next_oh_event(client)  # STATUS$READY
    for n in (2, 3):
        await client.call("oh_user_action", add(n))
    events = await collect_oh_events(client, until=lambda e: e.get("args", {}).get("total") == 5)
    assert events[-1]["message"] == "total: 5"
    await client.aclose()

    start = trio.current_time()
    await server.advance_past_close_delay("tally")  # 300 virtual seconds, no real waiting
    assert trio.current_time() - start >= 300
    assert server.info("tally") is None  # passivated: no task, no memory

    again = await server.connect("tally", latest_event_id=3)  # it saw ids 0..3
    assert is_status("STATUS$READY")(await next_oh_event(again))
    assert await again.call("oh_user_action", add(10)) == {"id": 4}  # ids continue
    events = await collect_oh_events(again, until=5)
    assert events[-1]["args"]["total"] == 15  # the rehydrated agent started from its snapshot


async def test_a_long_turn_on_the_mock_clock(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = await make_supervisor(agent=TallyAgent)
    client = await server.connect("thinker")
    await next_oh_event(client)
    start = trio.current_time()
    await client.call("oh_user_action", {"action": "think", "args": {"seconds": 90}})
    events = await collect_oh_events(client, until=1, timeout=120)
    assert events[-1]["message"] == "done thinking"
    assert trio.current_time() - start == pytest.approx(90, abs=1)


async def test_sqlite_restart_brings_the_session_back(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    first = await make_supervisor(store="sqlite", agent=TallyAgent)
    client = await first.connect("durable")
    await next_oh_event(client)
    await client.call("oh_user_action", add(7))
    await collect_oh_events(client, until=1)
    path = first.sqlite_path
    assert path is not None
    second_store = path.parent / "copy.db"  # a graceful shutdown, then a new server on the same file
    await first.shutdown()
    path.rename(second_store)

    second = await make_supervisor(store=second_store, agent=TallyAgent)
    again = await second.connect("durable", latest_event_id=-1)
    events = await collect_oh_events(again, until=is_status("STATUS$READY"))
    assert event_ids(events) == [0, 1] and statuses(events) == ["STATUS$READY"]
    await again.call("oh_user_action", add(1))
    assert (await collect_oh_events(again, until=3))[-1]["args"]["total"] == 8


async def test_sqlite_under_autojump_does_not_time_out_spuriously(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    # Without ClockSafeStore, the clock jumps to the receive timeout while SQLite commits in its thread.
    server = await make_supervisor(store="sqlite")
    client = await server.connect("many")
    await next_oh_event(client)
    start = trio.current_time()
    for i in range(300):
        assert await client.call("oh_user_action", user_message(f"m{i}"), timeout=5) == {"id": 2 * i}
        await collect_oh_events(client, until=2 * i + 1, timeout=5)
    assert trio.current_time() - start < 5


async def test_refusals_come_out_as_connect_errors(make_supervisor: MakeSupervisor) -> None:
    server = await make_supervisor(api_keys={"k-alice": "alice"})
    with pytest.raises(ConnectError) as info:
        await server.connect("c", token="wrong")
    assert info.value.data == {"msg_id": "CONNECT$INVALID_CREDENTIALS"}
    client = await server.connect("c", token="k-alice")
    assert is_status("STATUS$READY")(await next_oh_event(client))


async def test_open_supervisor_without_fixtures(autojump_clock: trio.testing.MockClock) -> None:
    async with open_supervisor(agent=TallyAgent, close_delay=10) as server:
        assert isinstance(server, SupervisorHandle)
        client = await server.connect("plain")
        await next_oh_event(client)
        await client.call("oh_user_action", add(1))
        await collect_oh_events(client, until=1)
    # the block's end closed the client and shut the server down
    assert client.closed
