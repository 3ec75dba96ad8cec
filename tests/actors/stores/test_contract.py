"""The Store contract, run against every backend."""

from __future__ import annotations

import pytest
import trio

from actors.events import StoredEvent
from actors.stores import (
    EventIdConflict,
    SessionRecord,
    Store,
    StoreError,
    SupportsLoadWithEvents,
    load_with_events,
)


def events(first: int, count: int, **extra: object) -> list[StoredEvent]:
    return [StoredEvent.create(i, {"message": f"m{i}", **extra}) for i in range(first, first + count)]


async def ids_after(store: Store, session_id: str, after: int = -1, limit: int = 10_000) -> list[int]:
    return [event.id for event in await store.events_after(session_id, after, limit)]


async def test_create_returns_an_empty_record_that_load_returns_too(store: Store) -> None:
    created = await store.create("s1", "alice")
    assert (created.session_id, created.owner, created.last_event_id) == ("s1", "alice", -1)
    assert (created.snapshot, created.snapshot_event_id) == (None, -1)
    assert created.created_at > 0
    assert await store.load("s1") == created


async def test_create_of_an_existing_session_returns_it_unchanged(store: Store) -> None:
    first = await store.create("s1", "alice")
    await store.append("s1", events(0, 2))
    again = await store.create("s1", "mallory")
    assert again.owner == "alice"
    assert again.created_at == first.created_at
    assert again.last_event_id == 1


async def test_load_of_a_missing_session_is_none(store: Store) -> None:
    assert await store.load("nope") is None


async def test_sessions_without_owner_keep_none(store: Store) -> None:
    await store.create("anon", None)
    record = await store.load("anon")
    assert record is not None and record.owner is None


async def test_appended_events_come_back_in_order_with_after_and_limit(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", events(0, 3))
    await store.append("s1", events(3, 4))
    assert await ids_after(store, "s1") == list(range(7))
    assert await ids_after(store, "s1", after=2) == [3, 4, 5, 6]
    assert await ids_after(store, "s1", after=2, limit=2) == [3, 4]
    assert await ids_after(store, "s1", after=6) == []
    assert await ids_after(store, "s1", after=-1, limit=0) == []
    record = await store.load("s1")
    assert record is not None and record.last_event_id == 6


async def test_events_keep_payload_and_json_text_verbatim(store: Store) -> None:
    await store.create("s1", None)
    spaced = StoredEvent(0, {"id": 0, "message": "héllo"}, '{"id": 0,  "message": "héllo"}')
    bare = StoredEvent(1, {"id": 1, "args": {"x": [1, 2]}})  # no json_text: the store encodes it
    await store.append("s1", [spaced, bare])
    got = await store.events_after("s1", -1, 10)
    assert got[0].json_text == spaced.json_text
    assert got[0].payload == spaced.payload
    assert got[1].payload == bare.payload
    assert got[1].json_text == '{"id":1,"args":{"x":[1,2]}}'


async def test_events_after_of_a_missing_session_is_empty(store: Store) -> None:
    assert await store.events_after("nope", -1, 10) == []


async def test_logs_of_sessions_are_separate(store: Store) -> None:
    await store.create("a", None)
    await store.create("b", None)
    await store.append("a", events(0, 3, session="a"))
    await store.append("b", events(0, 1, session="b"))
    assert [e.payload["session"] for e in await store.events_after("a", -1, 10)] == ["a"] * 3
    assert await ids_after(store, "b") == [0]


async def test_an_append_that_skips_ids_is_refused_and_changes_nothing(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", events(0, 2))
    with pytest.raises(EventIdConflict):
        await store.append("s1", events(3, 1))
    assert await ids_after(store, "s1") == [0, 1]
    await store.append("s1", events(2, 1))  # the log still continues where it was
    assert await ids_after(store, "s1") == [0, 1, 2]


async def test_an_append_that_reuses_an_id_is_refused(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", events(0, 2))
    with pytest.raises(EventIdConflict):
        await store.append("s1", events(1, 2))
    with pytest.raises(EventIdConflict):
        await store.append("s1", events(0, 1))
    assert await ids_after(store, "s1") == [0, 1]


async def test_the_first_event_of_a_log_must_be_zero(store: Store) -> None:
    await store.create("s1", None)
    with pytest.raises(EventIdConflict):
        await store.append("s1", events(1, 1))


async def test_an_append_whose_ids_are_not_consecutive_is_refused(store: Store) -> None:
    await store.create("s1", None)
    with pytest.raises(EventIdConflict):
        await store.append("s1", [*events(0, 1), *events(2, 1)])
    assert await ids_after(store, "s1") == []


async def test_an_empty_append_is_a_no_op(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", [])
    assert await ids_after(store, "s1") == []


async def test_append_to_a_missing_session_is_a_store_error_not_a_conflict(store: Store) -> None:
    with pytest.raises(StoreError) as info:
        await store.append("nope", events(0, 1))
    assert not isinstance(info.value, EventIdConflict)
    assert "does not exist" in str(info.value)


async def test_a_conflict_does_not_disturb_concurrent_appends_of_other_sessions(store: Store) -> None:
    names = [f"s{i}" for i in range(10)]
    for name in names:
        await store.create(name, None)
        await store.append(name, events(0, 1))
    outcomes: dict[str, str] = {}

    async def append(name: str, first: int) -> None:
        try:
            await store.append(name, events(first, 2))
        except EventIdConflict:
            outcomes[name] = "conflict"
        else:
            outcomes[name] = "ok"

    async with trio.open_nursery() as nursery:
        for i, name in enumerate(names):
            nursery.start_soon(append, name, 0 if i % 3 == 0 else 1)  # every third one reuses id 0

    for i, name in enumerate(names):
        expected_ids, outcome = ([0], "conflict") if i % 3 == 0 else ([0, 1, 2], "ok")
        assert outcomes[name] == outcome, name
        assert await ids_after(store, name) == expected_ids, name


async def test_a_snapshot_comes_back_with_load(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", events(0, 5))
    snapshot = {"history": [{"role": "user", "content": "hi"}], "turns": 1, "ratio": 0.5, "none": None}
    await store.save_snapshot("s1", snapshot, 3)
    record = await store.load("s1")
    assert record is not None
    assert (record.snapshot, record.snapshot_event_id, record.last_event_id) == (snapshot, 3, 4)
    await store.save_snapshot("s1", {"turns": 2}, 4)  # a newer snapshot replaces it
    record = await store.load("s1")
    assert record is not None and (record.snapshot, record.snapshot_event_id) == ({"turns": 2}, 4)


async def test_a_snapshot_of_an_empty_log_covers_event_minus_one(store: Store) -> None:
    await store.create("s1", None)
    await store.save_snapshot("s1", {}, -1)
    record = await store.load("s1")
    assert record is not None and (record.snapshot, record.snapshot_event_id) == ({}, -1)


async def test_a_snapshot_cannot_cover_events_that_do_not_exist(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", events(0, 2))
    with pytest.raises(StoreError, match="cannot cover"):
        await store.save_snapshot("s1", {"x": 1}, 2)
    record = await store.load("s1")
    assert record is not None and record.snapshot is None


async def test_a_snapshot_of_a_missing_session_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await store.save_snapshot("nope", {}, -1)


async def test_a_snapshot_that_is_not_json_is_an_error(store: Store) -> None:
    await store.create("s1", None)
    with pytest.raises(StoreError, match="JSON"):
        await store.save_snapshot("s1", {"x": object()}, -1)


async def test_snapshots_are_copies_not_shared_objects(store: Store) -> None:
    await store.create("s1", None)
    snapshot = {"items": [1]}
    await store.save_snapshot("s1", snapshot, -1)
    snapshot["items"].append(2)
    record = await store.load("s1")
    assert record is not None and record.snapshot == {"items": [1]}


async def test_list_sessions_pages_in_id_order_and_count_counts(store: Store) -> None:
    names = [f"s{i:02d}" for i in range(25)]
    for name in reversed(names):
        await store.create(name, "bob")
    assert await store.count_sessions() == 25
    seen: list[str] = []
    after: str | None = None
    while page := await store.list_sessions(after=after, limit=10):
        assert len(page) <= 10
        seen.extend(record.session_id for record in page)
        after = page[-1].session_id
    assert seen == names
    assert await store.list_sessions(limit=0) == []
    assert await store.list_sessions(after="s23") == [await _unsnapshotted(store, "s24")]


async def _unsnapshotted(store: Store, session_id: str) -> SessionRecord:
    record = await store.load(session_id)
    assert record is not None
    return SessionRecord(
        record.session_id,
        record.owner,
        record.created_at,
        record.last_event_id,
        None,
        record.snapshot_event_id,
    )


async def test_list_sessions_reports_last_ids_without_loading_snapshots(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", events(0, 3))
    await store.save_snapshot("s1", {"big": "x" * 1000}, 2)
    [record] = await store.list_sessions()
    assert (record.last_event_id, record.snapshot_event_id, record.snapshot) == (2, 2, None)


async def test_delete_removes_the_session_its_log_and_snapshot(store: Store) -> None:
    await store.create("s1", None)
    await store.create("s2", None)
    await store.append("s1", events(0, 3))
    await store.save_snapshot("s1", {"x": 1}, 1)
    await store.delete("s1")
    assert await store.load("s1") is None
    assert await store.events_after("s1", -1, 10) == []
    assert await store.count_sessions() == 1
    await store.delete("s1")  # absent: no error
    recreated = await store.create("s1", None)
    assert (recreated.last_event_id, recreated.snapshot) == (-1, None)
    await store.append("s1", events(0, 1))  # a new log starts at 0 again
    assert await ids_after(store, "s1") == [0]


async def test_a_closed_store_refuses_calls(store: Store) -> None:
    await store.create("s1", None)
    await store.close()
    with pytest.raises(StoreError):
        await store.load("s1")
    with pytest.raises(StoreError):
        await store.append("s1", events(0, 1))
    await store.close()  # idempotent


async def test_load_with_events_returns_the_record_and_the_events_after_its_snapshot(store: Store) -> None:
    assert await load_with_events(store, "nope", 10) == (None, [])
    await store.create("s1", None)
    await store.append("s1", events(0, 6))
    record, missed = await load_with_events(store, "s1", 10)
    assert record == await store.load("s1")
    assert [e.id for e in missed] == list(range(6))  # no snapshot yet: the whole log
    await store.save_snapshot("s1", {"turns": 1}, 3)
    record, missed = await load_with_events(store, "s1", 1)
    assert record is not None and record.snapshot == {"turns": 1}
    assert [e.id for e in missed] == [4]
    assert (await load_with_events(store, "s1", 0))[1] == []


class LoadOnlyStore:
    """A store with only the protocol's methods (as a test fake might be): the helper falls back."""

    def __init__(self, inner: Store) -> None:
        self.load = inner.load
        self.events_after = inner.events_after


async def test_load_with_events_falls_back_on_stores_without_it(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", events(0, 3))
    await store.save_snapshot("s1", {}, 0)
    fake = LoadOnlyStore(store)
    assert not isinstance(fake, SupportsLoadWithEvents)
    record, missed = await load_with_events(fake, "s1", 10)  # type: ignore[arg-type]
    assert record is not None and record.snapshot_event_id == 0
    assert [e.id for e in missed] == [1, 2]


async def test_single_node_stores_accept_any_fence(store: Store) -> None:
    await store.create("s1", None)
    await store.append("s1", events(0, 2), fence=7)
    await store.append("s1", events(2, 1), fence=1)  # one node: an older token is no lease lost
    await store.append("s1", events(3, 1))
    assert await ids_after(store, "s1") == [0, 1, 2, 3]
