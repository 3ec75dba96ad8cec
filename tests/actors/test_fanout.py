"""The node's FanOut on its own: a session's connections served from the log alone (no live actor),
replay racing publishes without gap or duplicate, flow control, lag limit and slow consumers."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from actors.config import SupervisorConfig
from actors.events import OutboundEvent, StoredEvent
from actors.fanout import FanOut
from actors.messages import Act, ActResult
from actors.reply import Reply
from actors.stores.memory import MemoryStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, user_message


class SlowReadStore(MemoryStore):
    """Reads take a (mock) while, so publishes interleave with replay pages."""

    async def events_after(self, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
        await trio.sleep(0.5)
        return await super().events_after(session_id, after_id, limit)

    async def load(self, session_id: str) -> Any:
        await trio.sleep(0.5)
        return await super().load(session_id)


class Writer:
    """What a remote owner does: append to the log, then publish to this node's fan-out."""

    def __init__(self, store: MemoryStore, fanout: FanOut, session_id: str) -> None:
        self.store, self.fanout, self.session_id = store, fanout, session_id
        self.head = -1

    async def write(self, n: int = 1) -> None:
        ids = range(self.head + 1, self.head + 1 + n)
        events = [StoredEvent.create(i, {"message": f"m{i}"}) for i in ids]
        await self.store.append(self.session_id, events, fence=1)
        self.head = events[-1].id
        self.fanout.publish(self.session_id, events)


@asynccontextmanager
async def serving(store: MemoryStore, **options: Any) -> AsyncIterator[FanOut]:
    fanout = FanOut(store, **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(fanout.run)
        yield fanout
        nursery.cancel_scope.cancel()


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with SlowReadStore() as s:
        await s.create("s1", None)
        yield s


async def test_a_connection_is_served_from_the_log_alone(store: MemoryStore, autojump_clock: Any) -> None:
    async with serving(store, page_size=2) as fanout:
        writer = Writer(store, fanout, "s1")
        await writer.write(5)
        conn = FakeConn("c1")
        fanout.attach("s1", conn, 1)  # no actor told the head: the fan-out reads it from the store
        await trio.sleep(10)  # the store's reads take mock time
        assert conn.event_ids == [2, 3, 4]
        assert conn.statuses == ["STATUS$READY"]
        assert conn.sent[-1].payload["id"] == "STATUS$READY"  # READY after the replay
        await writer.write()
        await trio.sleep(10)  # the store's reads take mock time
        assert conn.event_ids == [2, 3, 4, 5]
        assert fanout.replaying("s1") == ()


async def test_replay_from_the_log_races_publishes_without_gap_or_duplicate(
    store: MemoryStore, autojump_clock: Any
) -> None:
    rng = random.Random(99)
    async with serving(store, page_size=3) as fanout:
        writer = Writer(store, fanout, "s1")
        await writer.write(20)
        joined: list[FakeConn] = []

        async def write_some() -> None:
            for _ in range(60):
                await writer.write(rng.randrange(1, 3))
                await trio.sleep(rng.random() * 0.3)

        async def join_one(i: int) -> None:
            await trio.sleep(rng.random() * 8)
            conn = FakeConn(f"j{i}")
            joined.append(conn)
            fanout.attach("s1", conn, rng.randrange(-1, 25))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_some)
            for i in range(10):
                nursery.start_soon(join_one, i)
        await trio.sleep(30)
        assert writer.head > 60
        for conn in joined:
            ids = conn.event_ids
            assert ids == list(range(ids[0], writer.head + 1)), conn.id
            assert conn.closed is None and conn.statuses == ["STATUS$READY"]


async def test_a_cursor_ahead_of_the_log_is_clamped(store: MemoryStore, autojump_clock: Any) -> None:
    async with serving(store) as fanout:
        writer = Writer(store, fanout, "s1")
        await writer.write(2)
        conn = FakeConn("c1")
        fanout.attach("s1", conn, 50)
        await trio.sleep(10)  # the store's reads take mock time
        await writer.write()
        await trio.sleep(10)  # the store's reads take mock time
        assert conn.event_ids == [2] and conn.statuses == ["STATUS$READY"]


async def test_a_known_head_makes_a_caught_up_connection_live_at_once(store: MemoryStore,
                                                                    autojump_clock: Any) -> None:
    async with serving(store) as fanout:
        writer = Writer(store, fanout, "s1")
        await writer.write(3)
        conn = FakeConn("c1")
        fanout.attach("s1", conn, 2, head=2)
        assert conn.statuses == ["STATUS$READY"]  # before any await
        await writer.write()
        assert conn.event_ids == [3]


async def test_a_publisher_gap_sends_the_connection_back_to_the_log(store: MemoryStore,
                                                                   autojump_clock: Any) -> None:
    async with serving(store) as fanout:
        conn = FakeConn("c1")
        fanout.attach("s1", conn, -1, head=-1)
        events = [StoredEvent.create(i, {"message": f"m{i}"}) for i in range(4)]
        await store.append("s1", events)
        fanout.publish("s1", events[:1])
        fanout.publish("s1", events[3:])  # 1 and 2 were never published here
        await trio.sleep(10)  # the store's reads take mock time
        assert conn.event_ids == [0, 1, 2, 3] and conn.closed is None


async def test_slow_consumer_is_cut_off_and_reported(store: MemoryStore, autojump_clock: Any) -> None:
    dropped: list[tuple[str, str]] = []
    async with serving(store, on_detached=lambda sid, cid: dropped.append((sid, cid))) as fanout:
        writer = Writer(store, fanout, "s1")
        slow, fast = FakeConn("slow", capacity=3), FakeConn("fast")
        fanout.attach("s1", slow, -1, head=-1)
        fanout.attach("s1", fast, -1, head=-1)
        await writer.write(5)
        assert slow.closed == "slow consumer" and fast.event_ids == list(range(5))
        assert dropped == [("s1", "slow")]
        assert fanout.connection_ids("s1") == ("fast",)


async def test_a_replaying_connection_that_falls_behind_is_cut_off(store: MemoryStore,
                                                                  autojump_clock: Any) -> None:
    async with serving(store, page_size=2, lag_limit=5) as fanout:
        writer = Writer(store, fanout, "s1")
        await writer.write(4)
        stuck = FakeConn("stuck", capacity=1)
        fanout.attach("s1", stuck, -1)
        await trio.sleep(10)  # the store's reads take mock time
        assert stuck.event_ids == [0] and stuck.closed is None
        await writer.write(10)
        assert stuck.closed == "lagging"
        assert fanout.connection_count == 0


async def test_detach_stops_the_replay_and_close_all_sends_the_status(store: MemoryStore,
                                                                     autojump_clock: Any) -> None:
    async with serving(store, page_size=1) as fanout:
        writer = Writer(store, fanout, "s1")
        await writer.write(10)
        gone, stays = FakeConn("gone"), FakeConn("stays")
        fanout.attach("s1", gone, -1)
        fanout.attach("s1", stays, 9, head=9)
        assert fanout.replaying("s1") == ("gone",)
        assert fanout.detach("s1", "gone") and not fanout.detach("s1", "gone")
        await trio.sleep(10)  # the store's reads take mock time
        assert gone.event_ids == [] and gone.closed is None
        fanout.close_all("s1", OutboundEvent.status("STATUS$STOPPED", "bye"), "bye")
        assert stays.statuses == ["STATUS$READY", "STATUS$STOPPED"] and stays.closed == "bye"
        assert fanout.connection_count == 0


async def test_the_node_fanout_serves_a_log_alone_connection_beside_the_actor(autojump_clock: Any) -> None:
    async with MemoryStore() as store, serving(store, page_size=2) as fanout:
        sup = Supervisor(store, None, SupervisorConfig(close_delay=None), fanout=fanout)
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            for i in range(3):
                reply: Reply[ActResult] = Reply()
                await sup.deliver("s1", Act(None, user_message(f"m{i}"), reply))
                await reply.get()
            outside = FakeConn("outside")
            fanout.attach("s1", outside, 0)  # not joined to the actor: served from the log
            await trio.sleep(1)
            assert outside.event_ids == [1, 2] and outside.statuses == ["STATUS$READY"]
            reply = Reply()
            await sup.deliver("s1", Act(None, user_message("live"), reply))
            await reply.get()
            assert outside.event_ids == [1, 2, 3]
            assert sup.info("s1").connections == 0  # type: ignore[union-attr]
            nursery.cancel_scope.cancel()
