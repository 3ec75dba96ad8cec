"""Fenced appends and snapshots on a real redis-server: the lease's token and the log's next id are checked
in one atomic step, and what is refused leaves the log unchanged."""

from __future__ import annotations

import pytest

from actors.cluster import RedisPlacement
from actors.events import StoredEvent
from actors.stores import EventIdConflict, StoreError
from actors.stores.base import FencedOut
from actors.stores.redis import RedisStore


def events(first: int, count: int) -> list[StoredEvent]:
    return [StoredEvent.create(i, {"message": f"m{i}"}) for i in range(first, first + count)]


async def ids(store: RedisStore, sid: str) -> list[int]:
    return [e.id for e in await store.events_after(sid, -1, 1000)]


async def test_an_append_with_the_current_fence_is_accepted(redis_store: RedisStore) -> None:
    placement = RedisPlacement(redis_store, "a")
    await redis_store.create("s", None)
    lease = await placement.acquire("s")
    assert lease is not None
    await redis_store.append("s", events(0, 3), fence=lease.fence)
    assert await ids(redis_store, "s") == [0, 1, 2]


async def test_a_stale_fence_is_refused_after_a_takeover_and_changes_nothing(redis_store: RedisStore) -> None:
    a, b = RedisPlacement(redis_store, "a"), RedisPlacement(redis_store, "b")
    await redis_store.create("s", None)
    old = await a.acquire("s")
    assert old is not None
    await redis_store.append("s", events(0, 2), fence=old.fence)
    await a.release(old)
    new = await b.acquire("s")
    assert new is not None and new.fence > old.fence
    with pytest.raises(FencedOut, match="held by b:"):
        await redis_store.append("s", events(2, 1), fence=old.fence)
    assert await ids(redis_store, "s") == [0, 1]
    await redis_store.append("s", events(2, 1), fence=new.fence)
    assert await ids(redis_store, "s") == [0, 1, 2]


async def test_a_fenced_append_without_any_lease_is_refused(redis_store: RedisStore) -> None:
    await redis_store.create("s", None)
    with pytest.raises(FencedOut, match="no lease"):
        await redis_store.append("s", events(0, 1), fence=1)
    assert await ids(redis_store, "s") == []


async def test_a_gap_is_refused_even_with_the_right_fence(redis_store: RedisStore) -> None:
    placement = RedisPlacement(redis_store, "a")
    await redis_store.create("s", None)
    lease = await placement.acquire("s")
    assert lease is not None
    await redis_store.append("s", events(0, 2), fence=lease.fence)
    with pytest.raises(EventIdConflict, match="last event id is 1"):
        await redis_store.append("s", events(3, 1), fence=lease.fence)
    with pytest.raises(EventIdConflict):
        await redis_store.append("s", events(1, 1), fence=lease.fence)  # a reused id too
    assert await ids(redis_store, "s") == [0, 1]


async def test_a_store_that_requires_fences_refuses_unfenced_appends(redis_store: RedisStore) -> None:
    strict = RedisStore(redis_store.url, require_fence=True)
    await strict.open()
    try:
        await strict.create("s", None)
        with pytest.raises(FencedOut):
            await strict.append("s", events(0, 1))
    finally:
        await strict.close()


async def test_snapshot_and_release_hands_the_session_over_in_one_step(redis_store: RedisStore) -> None:
    a, b = RedisPlacement(redis_store, "a"), RedisPlacement(redis_store, "b")
    await redis_store.create("s", None)
    lease = await a.acquire("s")
    assert lease is not None
    await redis_store.append("s", events(0, 3), fence=lease.fence)
    assert await b.acquire("s") is None
    await redis_store.save_snapshot("s", {"turns": 3}, 2, fence=lease.fence, release=True)
    assert await a.owner_of("s") is None
    taken = await b.acquire("s")
    assert taken is not None and taken.fence == lease.fence + 1
    record = await redis_store.load("s")
    assert record is not None and (record.snapshot, record.snapshot_event_id) == ({"turns": 3}, 2)
    with pytest.raises(FencedOut):  # the old owner can no longer overwrite it
        await redis_store.save_snapshot("s", {"turns": 0}, 2, fence=lease.fence)
    with pytest.raises(StoreError, match="older"):
        await redis_store.save_snapshot("s", {"turns": 1}, 1, fence=taken.fence)


async def test_inbox_ids_move_the_inbox_position_with_the_append(redis_store: RedisStore) -> None:
    await redis_store.create("s", None)
    assert await redis_store.inbox_position("s") == "0-0"
    await redis_store.append("s", events(0, 3), inbox_ids=["5-0", None, "7-2"])
    assert await redis_store.inbox_position("s") == "7-2"
    entries = await redis_store.entries_after("s", -1, 10)
    assert [(e.event.id, e.inbox_id) for e in entries] == [(0, "5-0"), (1, None), (2, "7-2")]


async def test_fences_keep_increasing_across_delete_and_recreate(redis_store: RedisStore) -> None:
    placement = RedisPlacement(redis_store, "a")
    await redis_store.create("s", None)
    first = await placement.acquire("s")
    assert first is not None
    await placement.release(first)
    await redis_store.delete("s")
    await redis_store.create("s", None)
    second = await placement.acquire("s")
    assert second is not None and second.fence > first.fence
