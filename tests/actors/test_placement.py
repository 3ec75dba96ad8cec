"""Placement leases around incarnations, fenced appends, and the ActorRef handle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from actors.config import SupervisorConfig
from actors.echo import EchoAgent
from actors.errors import SessionNotFound
from actors.events import StoredEvent
from actors.messages import Join, Leave
from actors.placement import Lease, LocalPlacement, Placement
from actors.ref import ActorRef
from actors.stores.memory import MemoryStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, act, join, settle


class FenceRecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.fences: list[tuple[int, int | None]] = []  # (first event id, fence)

    async def append(self, session_id: str, events: list[StoredEvent], *, fence: int | None = None) -> None:
        await super().append(session_id, events, fence=fence)
        self.fences.append((events[0].id, fence))


class ExpiringPlacement:
    """A placement whose leases must be renewed, and which can be told to refuse or to lose them."""

    def __init__(self) -> None:
        self.node_id = "node-a"
        self.renew_interval: float | None = 5.0
        self.fences = 0
        self.held: dict[str, Lease] = {}
        self.lose: set[str] = set()
        self.held_elsewhere: set[str] = set()
        self.log: list[tuple[str, str, int]] = []

    async def acquire(self, session_id: str) -> Lease | None:
        await trio.lowlevel.checkpoint()
        if session_id in self.held_elsewhere:
            return None
        self.fences += 1
        lease = self.held[session_id] = Lease(session_id, self.node_id, self.fences)
        self.log.append(("acquire", session_id, lease.fence))
        return lease

    async def renew(self, lease: Lease) -> bool:
        await trio.lowlevel.checkpoint()
        if lease.session_id in self.lose:
            self.lose.discard(lease.session_id)
            del self.held[lease.session_id]
            return False
        return self.held.get(lease.session_id) == lease

    async def release(self, lease: Lease) -> None:
        await trio.lowlevel.checkpoint()
        self.log.append(("release", lease.session_id, lease.fence))
        if self.held.get(lease.session_id) == lease:
            del self.held[lease.session_id]

    async def owner_of(self, session_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        if session_id in self.held_elsewhere:
            return "node-b"
        return self.node_id if session_id in self.held else None


@asynccontextmanager
async def running(store: MemoryStore, placement: Placement, **config: Any) -> AsyncIterator[Supervisor]:
    config.setdefault("close_delay_jitter", 0.0)
    sup = Supervisor(store, EchoAgent, SupervisorConfig(**config), placement=placement)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        yield sup
        nursery.cancel_scope.cancel()


def test_local_placement_fences_increase_and_leases_never_expire() -> None:
    placement = LocalPlacement("n1")
    first = placement.acquire_nowait("s1")
    placement.release_nowait(first)
    second = placement.acquire_nowait("s1")
    other = placement.acquire_nowait("s2")
    assert first.fence < second.fence and other.fence != second.fence
    assert (second.session_id, second.node_id) == ("s1", "n1")
    assert placement.renew_interval is None


async def test_local_placement_hosts_every_session_here() -> None:
    placement = LocalPlacement("n1")
    lease = await placement.acquire("s1")
    assert lease is not None
    assert await placement.owner_of("s1") == "n1" and await placement.renew(lease)
    await placement.release(lease)
    assert await placement.owner_of("s2") == "n1"
    assert not await placement.renew(Lease("s1", "elsewhere", 1))


async def test_an_incarnation_holds_a_lease_from_load_to_passivation_and_appends_with_its_fence(
    autojump_clock: Any,
) -> None:
    placement = ExpiringPlacement()
    async with FenceRecordingStore() as store, running(store, placement, close_delay=10) as sup:
        await act(sup, "s1", "one")
        assert await placement.owner_of("s1") == "node-a"
        await trio.sleep(100)  # idle deadline: passivated (renewed meanwhile, never lost)
        assert sup.info("s1") is None
        await settle()
        await act(sup, "s1", "two")
        (_, _, f1), (_, _, f1r), (_, _, f2) = placement.log[:3]
        assert [entry[0] for entry in placement.log[:3]] == ["acquire", "release", "acquire"]
        assert f1 == f1r and f2 > f1
        assert store.fences[0] == (0, f1)  # the user event of the first incarnation
        assert all(fence == f2 for first, fence in store.fences if first >= 2)


async def test_a_lost_lease_stops_the_actor_and_it_never_appends_with_the_old_fence(
    autojump_clock: Any,
) -> None:
    placement = ExpiringPlacement()
    async with FenceRecordingStore() as store, running(store, placement, close_delay=None) as sup:
        conn = await join(sup, "s1")
        await act(sup, "s1", "before")
        old = placement.log[0][2]
        placement.lose.add("s1")
        await trio.sleep(6)  # one renewal: lost
        await settle()
        assert conn.closed is not None and conn.statuses[-1] == "STATUS$STOPPED"
        assert sup.info("s1") is None and sup.counters["leases_lost"] == 1
        await act(sup, "s1", "after")  # rehydrates under a new lease
        fences = [fence for first, fence in store.fences]
        assert fences[:2] == [old, old] and all(f is not None and f > old for f in fences[2:])


async def test_a_session_held_by_another_node_is_refused(autojump_clock: Any) -> None:
    placement = ExpiringPlacement()
    placement.held_elsewhere.add("s1")
    async with MemoryStore() as store, running(store, placement) as sup:
        with pytest.raises(SessionNotFound):
            await sup.deliver("s1", Join(FakeConn("c1"), -1), user_id="u1")
        assert sup.info("s1") is None and sup.counters["refused.placement"] == 1


async def test_an_actor_ref_names_the_session_across_incarnations(autojump_clock: Any) -> None:
    async with MemoryStore() as store, running(store, LocalPlacement(), close_delay=10) as sup:
        ref = sup.ref("s1", user_id="alice")
        assert ref == sup.ref("s1", user_id="alice") and isinstance(ref, ActorRef)
        assert ref.info() is None
        assert (await ref.ask_act({"action": "message", "args": {"content": "hi"}})).event_id == 0
        conn = FakeConn("c1")
        await ref.tell(Join(conn, -1))
        await settle()  # the echo turn has answered
        inspected = await ref.ask_inspect()
        assert inspected.connections == ("c1",) and inspected.last_event_id == 1
        assert conn.event_ids == [0, 1] and conn.statuses == ["STATUS$READY"]
        await ref.tell(Leave("c1"), live_only=True)
        await trio.sleep(100)
        assert ref.info() is None  # passivated; the ref still works
        info = await ref.ensure()
        assert info.owner == "alice" and info.last_event_id == inspected.last_event_id
        with pytest.raises(SessionNotFound):
            await sup.ref("nope").ensure(create=False)
