"""Replay on Join: every event after latest_event_id, then live, no gap, no duplicate, no blocking."""

from __future__ import annotations

import random
from typing import Any

import trio

from actors.events import StoredEvent
from actors.messages import Join, Leave
from actors.stores.memory import MemoryStore
from tests.actors.conftest import FakeConn, act, join, running, settle


class SlowReadStore(MemoryStore):
    """events_after takes a (mock) while, so live appends interleave with replay pages."""

    async def events_after(self, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
        await trio.sleep(0.5)
        return await super().events_after(session_id, after_id, limit)


async def test_join_replays_missed_events_then_live(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store, replay_page_size=2) as sup:
        for i in range(5):
            await act(sup, "s1", f"m{i}")
        conn = await join(sup, "s1", latest=1)
        await settle()
        assert conn.event_ids == [2, 3, 4]
        assert conn.statuses == ["STATUS$READY"]
        await act(sup, "s1", "live")
        await settle()
        assert conn.event_ids == [2, 3, 4, 5]
        assert [p["args"]["content"] for p in conn.payloads] == ["m2", "m3", "m4", "live"]


async def test_replay_races_live_traffic_without_gap_or_duplicate(autojump_clock: Any) -> None:
    rng = random.Random(1234)
    async with SlowReadStore() as store, running(store, replay_page_size=3) as sup:
        for i in range(20):
            await act(sup, "s1", f"pre{i}")
        joined: list[FakeConn] = []

        async def writer(n: int) -> None:
            for k in range(n):
                await act(sup, "s1", f"w{k}")
                await trio.sleep(rng.random() * 0.3)

        async def joiner(i: int) -> None:
            await trio.sleep(rng.random() * 5)
            conn = FakeConn(f"j{i}")
            joined.append(conn)
            await sup.deliver("s1", Join(conn, rng.randrange(-1, 25)))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(writer, 30)
            for i in range(10):
                nursery.start_soon(joiner, i)
        await trio.sleep(30)
        head = sup.info("s1").last_event_id  # type: ignore[union-attr]
        assert head == 20 + 90 - 1
        for conn in joined:
            ids = conn.event_ids
            assert ids == list(range(ids[0], head + 1)), conn.id
            assert conn.closed is None and conn.statuses == ["STATUS$READY"]


async def test_slow_connection_is_closed_without_blocking_the_actor(store: MemoryStore,
                                                                    autojump_clock: Any) -> None:
    async with running(store) as sup:
        slow = await join(sup, "s1", "slow", capacity=5)
        fast = await join(sup, "s1", "fast")
        for i in range(10):
            await act(sup, "s1", f"m{i}")
        await settle()
        assert slow.closed == "slow consumer"
        assert fast.event_ids == list(range(10)) and fast.closed is None
        assert sup.info("s1").connections == 1  # type: ignore[union-attr]
        again = await join(sup, "s1", "slow2", latest=slow.event_ids[-1])  # reconnect with last id
        await settle()
        assert slow.event_ids + again.event_ids == list(range(10))


async def test_replaying_connection_that_falls_behind_is_closed(store: MemoryStore,
                                                                autojump_clock: Any) -> None:
    async with running(store, replay_page_size=2, connection_lag_limit=5) as sup:
        for i in range(4):
            await act(sup, "s1", f"m{i}")
        stuck = FakeConn("stuck", capacity=1)
        await sup.deliver("s1", Join(stuck, -1))
        await settle()
        assert stuck.closed is None and stuck.event_ids == [0]  # waits for writability
        for i in range(10):
            await act(sup, "s1", f"live{i}")
        await settle()
        stuck.consume()
        await settle()
        assert stuck.closed == "lagging"
        assert sup.info("s1").connections == 0  # type: ignore[union-attr]


async def test_flow_controlled_replay_finishes_when_the_client_reads(store: MemoryStore,
                                                                     autojump_clock: Any) -> None:
    async with running(store, replay_page_size=3) as sup:
        for i in range(12):
            await act(sup, "s1", f"m{i}")
        reader = FakeConn("reader", capacity=4)
        await sup.deliver("s1", Join(reader, -1))
        for _ in range(10):
            await settle()
            reader.consume()
        assert reader.event_ids == list(range(12)) and reader.closed is None
        assert reader.statuses == ["STATUS$READY"]


async def test_cursor_ahead_of_head_is_clamped(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store) as sup:
        await act(sup, "s1")
        conn = await join(sup, "s1", latest=50)
        await act(sup, "s1")
        await settle()
        assert conn.event_ids == [1]


async def test_rejoin_with_same_id_replaces_the_entry(store: MemoryStore, autojump_clock: Any) -> None:
    async with running(store) as sup:
        await join(sup, "s1", "c1")
        await act(sup, "s1")
        second = await join(sup, "s1", "c1", latest=-1)
        await settle()
        assert sup.info("s1").connections == 1  # type: ignore[union-attr]
        assert second.event_ids == [0]
        await sup.deliver("s1", Leave("c1"))
        await settle()
        assert sup.info("s1").state == "idle"  # type: ignore[union-attr]
