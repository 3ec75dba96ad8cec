"""Log tails and routed actions on a real redis-server: subscribe-then-replay racing concurrent appends
yields every id once, in order; lost doorbells are filled from the Stream; routing rings the owner's node
and the inbox resumes after the last answered action."""

from __future__ import annotations

import random

import trio
import trio.lowlevel

from actors.cluster import (
    Doorbells,
    InboxEntry,
    RedisPlacement,
    Ring,
    open_tail,
    parse_ring,
    read_inbox,
    request,
    route,
)
from actors.events import StoredEvent
from actors.stores._redis_keys import SessionKeys, node_ring
from actors.stores.redis import LogEntry, RedisStore


def events(first: int, count: int) -> list[StoredEvent]:
    return [StoredEvent.create(i, {"message": f"m{i}\nline"}) for i in range(first, first + count)]


async def append_in_batches(store: RedisStore, sid: str, first: int, total: int, seed: int) -> None:
    rng = random.Random(seed)
    next_id = first
    while next_id < total:
        count = min(rng.randint(1, 7), total - next_id)
        await store.append(sid, events(next_id, count))
        next_id += count
        if rng.random() < 0.3:
            await trio.lowlevel.checkpoint()


async def tail_ids(
    store: RedisStore, doorbells: Doorbells, sid: str, after: int, until: int, *, page_size: int = 1000
) -> list[int]:
    seen: list[int] = []
    async with open_tail(store, doorbells, sid, after, page_size=page_size, poll_interval=0.2) as tail:
        async for batch in tail:
            for entry in batch:
                assert entry.event.payload["id"] == entry.event.id
                seen.append(entry.event.id)
            if seen and seen[-1] >= until:
                break
    return seen


async def test_a_tail_started_mid_traffic_sees_every_id_once_in_order(redis_store: RedisStore) -> None:
    await redis_store.create("s", None)
    await redis_store.append("s", events(0, 40))
    doorbells = Doorbells(redis_store)
    results: dict[str, list[int]] = {}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(doorbells.run)

            async def tail(name: str, after: int, page_size: int) -> None:
                results[name] = await tail_ids(redis_store, doorbells, "s", after, 799, page_size=page_size)

            async with trio.open_nursery() as inner:
                inner.start_soon(append_in_batches, redis_store, "s", 40, 800, 1)
                inner.start_soon(tail, "from_start", -1, 1000)
                inner.start_soon(tail, "from_middle", 25, 7)  # small pages: replay races the appends longer
            nursery.cancel_scope.cancel()
    assert results["from_start"] == list(range(800))
    assert results["from_middle"] == list(range(26, 800))


async def write_without_doorbell(store: RedisStore, sid: str, first: int, count: int) -> None:
    """Events that reach the Stream while their doorbell is lost (as during a Redis restart)."""
    keys = SessionKeys(sid)
    for event in events(first, count):
        await store.client.xadd(keys.log, {"e": event.json_text}, identifier=f"{event.id}-1")
    await store.client.hset(keys.meta, {"l": str(first + count - 1)})


async def test_lost_doorbells_are_filled_from_the_stream(redis_store: RedisStore) -> None:
    await redis_store.create("s", None)
    doorbells = Doorbells(redis_store)
    batches: list[list[LogEntry]] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(doorbells.run)
            async with open_tail(redis_store, doorbells, "s", -1, poll_interval=0.2) as tail:
                await redis_store.append("s", events(0, 10))
                batches.append(await tail.__anext__())  # the replay; its doorbell is dropped later
                await write_without_doorbell(redis_store, "s", 10, 10)
                await redis_store.append("s", events(20, 10))  # its doorbell reveals the gap 10..19
                batches.append(await tail.__anext__())
                await write_without_doorbell(redis_store, "s", 30, 10)  # no doorbell follows: the poll
                batches.append(await tail.__anext__())
                assert tail.filled == 10
            nursery.cancel_scope.cancel()
    assert [[e.event.id for e in batch] for batch in batches] == [
        list(range(10)), list(range(10, 30)), list(range(30, 40))
    ]


async def test_a_route_rings_the_owner_and_the_inbox_resumes_after_the_answered_action(
    redis_store: RedisStore,
) -> None:
    await redis_store.create("s", None)
    first = await route(redis_store, "s", '{"action":"message","n":0}')
    assert (first.owner, first.receivers) == (None, 0)  # nobody hosts it: the sender acquires
    owner = RedisPlacement(redis_store, "b")
    lease = await owner.acquire("s")
    assert lease is not None
    doorbells = Doorbells(redis_store)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(doorbells.run)
            async with doorbells.listen(node_ring("b")) as ring:
                second = await route(redis_store, "s", '{"action":"message","n":1}')
                assert (second.owner, second.receivers) == ("b", 1)
                # The ring carries the entry and the one before it: an owner that handed over exactly
                # that one takes this entry as it came, without reading the inbox.
                rung = parse_ring(await ring.receive())
                assert rung == Ring("s", InboxEntry(second.inbox_id, '{"action":"message","n":1}'),
                                    first.inbox_id)
                third = await request(redis_store, "s", "passivate 7 reason")
                rung = parse_ring(await ring.receive())
                request_entry = InboxEntry(third.inbox_id, "", "passivate 7 reason")
                assert rung == Ring("s", request_entry, second.inbox_id)
            nursery.cancel_scope.cancel()
    waiting = await read_inbox(redis_store, "s", "0-0")
    assert [e.inbox_id for e in waiting] == [first.inbox_id, second.inbox_id, third.inbox_id]
    assert waiting[1].action == '{"action":"message","n":1}'
    # The owner answers the first action: its event and the inbox position land in one append.
    await redis_store.append("s", events(0, 1), fence=lease.fence, inbox_ids=[first.inbox_id])
    position = await redis_store.inbox_position("s")
    assert position == first.inbox_id
    assert [e.inbox_id for e in await read_inbox(redis_store, "s", position)] == [
        second.inbox_id, third.inbox_id]
    # A new owner after failover resumes from the same position: the answered action is not redone.
    await owner.release(lease)
    [entry] = await redis_store.entries_after("s", -1, 10)
    assert entry.inbox_id == first.inbox_id


async def test_a_full_inbox_refuses_instead_of_dropping(redis_store: RedisStore) -> None:
    from actors.cluster import InboxFull

    await redis_store.create("s", None)
    for n in range(3):
        await route(redis_store, "s", f'{{"n":{n}}}', max_inbox=3)
    try:
        await route(redis_store, "s", '{"n":3}', max_inbox=3)
    except InboxFull:
        pass
    else:
        raise AssertionError("a fourth action was accepted into an inbox of 3")
    assert len(await read_inbox(redis_store, "s", "0-0")) == 3
