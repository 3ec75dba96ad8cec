"""Redis faults with a private real redis-server (appendfsync always): SIGKILL and restart lose nothing
acknowledged; while Redis is down or frozen, calls fail with RedisUnavailable within the timeout instead
of hanging, and work again once it is back; a log tail carries on across a restart."""

from __future__ import annotations

import pytest
import trio

from actors.cluster import Doorbells, RedisPlacement, open_tail
from actors.events import StoredEvent
from actors.stores import EventIdConflict
from actors.stores.redis import RedisStore, RedisUnavailable
from tests.support.redis_server import RedisServer

TIMEOUT = 1.0


def events(first: int, count: int, text: str = "m") -> list[StoredEvent]:
    return [StoredEvent.create(i, {"message": f"{text}{i}"}) for i in range(first, first + count)]


async def log_ids(store: RedisStore, sid: str) -> list[int]:
    ids: list[int] = []
    while page := await store.events_after(sid, ids[-1] if ids else -1, 1000):
        ids.extend(e.id for e in page)
    return ids


async def test_sigkill_and_restart_lose_no_acknowledged_append(private_redis: RedisServer) -> None:
    async with RedisStore(private_redis.url, timeout=TIMEOUT) as store:
        placement = RedisPlacement(store, "a", lease_ttl=60)
        await store.create("s", "alice")
        lease = await placement.acquire("s")
        assert lease is not None
        acked = -1
        unknown: tuple[int, int] | None = None
        async with trio.open_nursery() as nursery:

            async def writer() -> None:
                nonlocal acked, unknown
                while True:
                    batch = events(acked + 1, 3)
                    try:
                        await store.append("s", batch, fence=lease.fence)
                    except RedisUnavailable:
                        unknown = (batch[0].id, batch[-1].id)  # applied or not: the log will tell
                        return
                    acked = batch[-1].id

            nursery.start_soon(writer)
            with trio.fail_after(10):
                while acked < 300:  # noqa: ASYNC110  (let real traffic build up against Redis)
                    await trio.sleep(0.005)
            private_redis.kill()
        assert unknown is not None
        private_redis.start()
        with trio.fail_after(10):
            ids = await log_ids(store, "s")
        assert ids == list(range(len(ids)))  # contiguous
        assert ids[-1] in (acked, unknown[1])  # all acknowledged; the unknown one all or nothing
        record = await store.load("s")
        assert record is not None and (record.owner, record.last_event_id) == ("alice", ids[-1])
        assert await placement.renew(lease)  # the lease and fence survived too (AOF)
        await store.append("s", events(ids[-1] + 1, 1), fence=lease.fence)  # the function library as well


async def test_while_redis_is_down_calls_fail_fast_and_recover(private_redis: RedisServer) -> None:
    async with RedisStore(private_redis.url, timeout=TIMEOUT) as store:
        await store.create("s", None)
        private_redis.kill()
        for call in (
            lambda: store.load("s"),
            lambda: store.append("s", events(0, 1)),
            lambda: store.create("t", None),
            lambda: store.count_sessions(),
            lambda: store.ping(),
        ):
            started = trio.current_time()
            with trio.fail_after(TIMEOUT * 3), pytest.raises(RedisUnavailable):
                await call()
            assert trio.current_time() - started <= TIMEOUT * 2
        private_redis.start()
        with trio.fail_after(10):
            await store.append("s", events(0, 1))
            assert [e.id for e in await store.events_after("s", -1, 10)] == [0]


async def test_a_frozen_redis_times_out_with_a_clear_error_then_recovers(private_redis: RedisServer) -> None:
    async with RedisStore(private_redis.url, timeout=TIMEOUT) as store:
        await store.create("s", None)
        private_redis.pause()
        try:
            started = trio.current_time()
            with trio.fail_after(TIMEOUT * 3), pytest.raises(RedisUnavailable, match="did not answer"):
                await store.load("s")
            assert trio.current_time() - started >= TIMEOUT * 0.9
        finally:
            private_redis.resume()
        with trio.fail_after(10):
            await store.append("s", events(0, 2))
            record = await store.load("s")
        assert record is not None and record.last_event_id == 1


async def test_open_fails_clearly_when_redis_is_unreachable(private_redis: RedisServer) -> None:
    private_redis.kill()
    store = RedisStore(private_redis.url, timeout=TIMEOUT)
    with trio.fail_after(TIMEOUT * 5), pytest.raises(RedisUnavailable):
        await store.open()
    await store.close()


async def test_a_tail_carries_on_across_a_redis_restart(private_redis: RedisServer) -> None:
    async with RedisStore(private_redis.url, timeout=TIMEOUT) as store:
        await store.create("s", None)
        doorbells = Doorbells(store)
        seen: list[int] = []
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(doorbells.run)
                async with open_tail(store, doorbells, "s", -1, poll_interval=0.2) as tail:
                    await store.append("s", events(0, 5))
                    seen.extend(e.event.id for e in await tail.__anext__())
                    private_redis.restart()
                    while True:  # the first calls after the restart may still meet the dead connection
                        try:
                            await store.append("s", events(5, 5))
                            break
                        except RedisUnavailable:
                            await trio.sleep(0.05)
                    while len(seen) < 10:
                        try:
                            seen.extend(e.event.id for e in await tail.__anext__())
                        except RedisUnavailable:
                            await trio.sleep(0.05)  # the tail stays usable: it resumes after its last id
                nursery.cancel_scope.cancel()
        assert seen == list(range(10))


async def test_an_append_that_timed_out_is_resolved_by_reading_the_log_not_by_retrying(
    private_redis: RedisServer,
) -> None:
    async with RedisStore(private_redis.url, timeout=TIMEOUT) as store:
        await store.create("s", None)
        await store.append("s", events(0, 2))
        late = events(2, 3)
        private_redis.pause()  # the command is sent, then Redis freezes before answering
        try:
            with pytest.raises(RedisUnavailable):
                await store.append("s", late)
        finally:
            private_redis.resume()  # ... and applies it after the caller gave up on it
        with trio.fail_after(10):
            assert await store.append_applied("s", late)
            with pytest.raises(EventIdConflict):  # a blind retry would duplicate: the GAP check refuses it
                await store.append("s", late)
            assert await log_ids(store, "s") == [0, 1, 2, 3, 4]
            assert not await store.append_applied("s", events(5, 1))  # never sent: safe to append
            with pytest.raises(EventIdConflict):
                await store.append_applied("s", events(2, 1, text="other"))
