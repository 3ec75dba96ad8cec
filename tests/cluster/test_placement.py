"""RedisPlacement on a real redis-server: acquire, renew, release, expiry, and races between nodes.

Lease expiry is Redis's own wall clock, which a trio MockClock cannot drive: the expiry tests use a short
real TTL and wait for Redis, bounded by fail_after."""

from __future__ import annotations

import pytest
import trio

from actors.cluster import RedisPlacement
from actors.placement import Lease, LocalPlacement, Placement
from actors.stores.redis import RedisStore


async def test_both_placements_satisfy_the_protocol(redis_store: RedisStore) -> None:
    placements: list[Placement] = [LocalPlacement(), RedisPlacement(redis_store, "n1", lease_ttl=9)]
    assert placements[1].renew_interval == 3
    assert placements[0].renew_interval is None


async def test_renew_many_renews_in_pipelined_batches_and_reports_each_lease(
    redis_store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actors.cluster.placement.RENEW_BATCH", 2)  # three leases: two round trips
    a, b = RedisPlacement(redis_store, "a", lease_ttl=30), RedisPlacement(redis_store, "b", lease_ttl=30)
    leases = [await a.acquire(sid) for sid in ("s1", "s2", "s3")]
    assert all(lease is not None for lease in leases)
    held = [lease for lease in leases if lease is not None]
    await a.release(held[1])
    assert await b.acquire("s2") is not None  # s2 is b's now: a's renewal of it must fail
    before = {sid: a.must_stop_at(sid) for sid in ("s1", "s3")}
    await trio.sleep(0.01)
    assert await a.renew_many(held) == [True, False, True]
    for sid in ("s1", "s3"):
        after, earlier = a.must_stop_at(sid), before[sid]
        assert after is not None and earlier is not None and after > earlier  # deadline moved on
    assert a.must_stop_at("s2") is None and await a.owner_of("s2") == "b"
    assert await a.renew_many([]) == []


async def test_node_ids_with_braces_are_refused(redis_store: RedisStore) -> None:
    with pytest.raises(ValueError, match="braces"):
        RedisPlacement(redis_store, "a{b}")


async def test_acquire_renew_release_and_owner(redis_store: RedisStore) -> None:
    a, b = RedisPlacement(redis_store, "a"), RedisPlacement(redis_store, "b")
    lease = await a.acquire("s")
    assert lease == Lease("s", "a", 1)
    assert await a.owner_of("s") == "a" and await b.owner_of("s") == "a"
    assert await b.acquire("s") is None
    assert await a.acquire("s") is None  # a held lease is not granted twice, even to its holder
    assert await a.renew(lease)
    stop_at = a.must_stop_at("s")
    assert stop_at is not None and stop_at <= trio.current_time() + a.lease_ttl - a.safety_margin
    await a.release(lease)
    assert await a.owner_of("s") is None and a.must_stop_at("s") is None
    assert not await a.renew(lease)  # released: renewing fails
    again = await b.acquire("s")
    assert again == Lease("s", "b", 2)


async def test_a_release_by_a_former_holder_does_not_drop_the_new_lease(redis_store: RedisStore) -> None:
    a, b = RedisPlacement(redis_store, "a", lease_ttl=0.2), RedisPlacement(redis_store, "b")
    old = await a.acquire("s")
    assert old is not None
    with trio.fail_after(5):
        while (new := await b.acquire("s")) is None:  # noqa: ASYNC110  (Redis's clock expires it)
            await trio.sleep(0.02)
    await a.release(old)
    assert not await a.renew(old)
    assert await b.owner_of("s") == "b" and await b.renew(new)


async def test_an_expired_lease_is_taken_over_with_a_higher_fence(redis_store: RedisStore) -> None:
    a, b = RedisPlacement(redis_store, "a", lease_ttl=0.3), RedisPlacement(redis_store, "b")
    old = await a.acquire("s")
    assert old is not None
    start = trio.current_time()
    assert await b.acquire("s") is None
    with trio.fail_after(5):
        while (new := await b.acquire("s")) is None:  # noqa: ASYNC110  (Redis's clock expires it)
            await trio.sleep(0.02)
    assert trio.current_time() - start >= 0.25  # not before the TTL (Redis's clock, give or take)
    assert new.fence == old.fence + 1 and new.node_id == "b"
    assert not await a.renew(old)  # the old holder learns it lost the lease


async def test_renewal_keeps_a_short_lease_alive(redis_store: RedisStore) -> None:
    a, b = RedisPlacement(redis_store, "a", lease_ttl=0.3), RedisPlacement(redis_store, "b")
    lease = await a.acquire("s")
    assert lease is not None
    for _ in range(8):  # 0.8 s in all, far past the TTL
        await trio.sleep(0.1)
        assert await a.renew(lease)
        assert await b.acquire("s") is None


async def test_nodes_racing_for_one_session_exactly_one_wins(redis_store: RedisStore) -> None:
    for round_ in range(20):
        sid = f"race{round_}"
        won: list[Lease] = []

        async def contend(node: str, sid: str = sid, won: list[Lease] = won) -> None:
            lease = await RedisPlacement(redis_store, node).acquire(sid)
            if lease is not None:
                won.append(lease)

        async with trio.open_nursery() as nursery:
            for n in range(6):
                nursery.start_soon(contend, f"node{n}")
        assert len(won) == 1, won
        assert won[0].fence == 1
