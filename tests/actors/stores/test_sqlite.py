"""SqliteStore beyond the shared contract: persistence, schema versions, group commit, isolation, bounds."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import trio
import trio.testing

from actors.events import StoredEvent
from actors.stores import EventIdConflict, SqliteStore, StoreError
from actors.stores._sqlite_schema import SCHEMA_VERSION

from .conftest import OpenSqlite


def event(event_id: int, **payload: object) -> StoredEvent:
    return StoredEvent.create(event_id, {"message": f"m{event_id}", **payload})


async def test_everything_survives_a_reopen(open_sqlite: OpenSqlite) -> None:
    store = await open_sqlite()
    created = await store.create("s1", "alice")
    await store.append("s1", [event(0), event(1), event(2)])
    await store.save_snapshot("s1", {"turns": 3}, 1)
    await store.create("s2", None)
    await store.close()

    store = await open_sqlite()
    record = await store.load("s1")
    assert record is not None
    assert (record.owner, record.created_at, record.last_event_id) == ("alice", created.created_at, 2)
    assert (record.snapshot, record.snapshot_event_id) == ({"turns": 3}, 1)
    assert [e.payload["message"] for e in await store.events_after("s1", -1, 10)] == ["m0", "m1", "m2"]
    assert await store.count_sessions() == 2
    await store.append("s1", [event(3)])  # the log continues after a reopen


async def test_a_new_database_is_in_wal_mode_at_the_current_schema_version(
    open_sqlite: OpenSqlite, tmp_path: Path
) -> None:
    await open_sqlite()
    conn = sqlite3.connect(tmp_path / "sessions.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"sessions", "events"} <= tables
    finally:
        conn.close()


async def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="newer"):
        await store.open()
    conn = sqlite3.connect(path)
    try:  # refused means untouched
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    finally:
        conn.close()


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        await SqliteStore(path).open()


async def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "a" / "b" / "sessions.db") as store:
        await store.create("s1", None)
    assert (tmp_path / "a" / "b" / "sessions.db").exists()


async def test_concurrent_appends_of_many_sessions_share_commits(open_sqlite: OpenSqlite) -> None:
    store = await open_sqlite()
    for i in range(100):
        await store.create(f"s{i}", None)
    before = store.commits
    async with trio.open_nursery() as nursery:
        for i in range(100):
            nursery.start_soon(store.append, f"s{i}", [event(0), event(1)])
    assert store.commits - before <= 5  # 100 appends; in practice 2 commits (the first leads alone)
    for i in range(100):
        record = await store.load(f"s{i}")
        assert record is not None and record.last_event_id == 1


async def test_concurrent_snapshots_and_reads_are_batched_too(open_sqlite: OpenSqlite) -> None:
    store = await open_sqlite()
    for i in range(50):
        await store.create(f"s{i}", None)
    stats = store.stats()
    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(store.save_snapshot, f"s{i}", {"n": i}, -1)
    assert store.commits - stats["commits"] <= 5
    loaded: dict[int, object] = {}

    async def load(i: int) -> None:
        record = await store.load(f"s{i}")
        assert record is not None
        loaded[i] = record.snapshot

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(load, i)
    assert loaded == {i: {"n": i} for i in range(50)}
    assert store.stats()["read_batches"] - stats["read_batches"] <= 5


class Gate:
    """Holds the next write batch in its worker thread until ``release()``; records every batch's ops."""

    def __init__(self) -> None:
        self.armed = False
        self.opened = threading.Event()
        self.batches: list[list[tuple[str, str]]] = []

    def hold_next(self) -> None:
        self.armed = True
        self.opened.clear()

    def release(self) -> None:
        self.opened.set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """The batching tests hold a worker thread, so their batches take the thread path (small batches
    otherwise commit on the trio thread: see the inline tests in test_sqlite_inline.py)."""
    gate = Gate()
    original = SqliteStore._write_batch
    monkeypatch.setattr(SqliteStore, "_write_inline", lambda self, ops: False)

    def gated(self: SqliteStore, ops: Sequence[object]) -> None:
        gate.batches.append([(type(op).__name__, op.session_id) for op in ops])  # type: ignore[attr-defined]
        if gate.armed:
            gate.armed = False
            gate.opened.wait(timeout=30)
        original(self, ops)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteStore, "_write_batch", gated)
    yield gate
    gate.release()


async def test_a_conflict_fails_alone_inside_a_shared_batch(gate: Gate, open_sqlite: OpenSqlite) -> None:
    store = await open_sqlite()
    for name in ("first", "good1", "bad", "good2"):
        await store.create(name, None)
    await store.append("bad", [event(0)])
    gate.batches.clear()
    outcomes: dict[str, str] = {}

    async def append(name: str, first_id: int) -> None:
        try:
            await store.append(name, [event(first_id), event(first_id + 1)])
        except EventIdConflict:
            outcomes[name] = "conflict"
        else:
            outcomes[name] = "ok"

    gate.hold_next()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(append, "first", 0)  # leads a batch alone and is held in its thread
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(append, "good1", 0)
        nursery.start_soon(append, "bad", 0)  # reuses id 0
        nursery.start_soon(append, "good2", 0)
        await trio.testing.wait_all_tasks_blocked()
        gate.release()

    assert gate.batches[0] == [("_Append", "first")]
    assert sorted(gate.batches[1]) == [("_Append", "bad"), ("_Append", "good1"), ("_Append", "good2")]
    assert outcomes == {"first": "ok", "good1": "ok", "bad": "conflict", "good2": "ok"}
    for name, last in (("first", 1), ("good1", 1), ("bad", 0), ("good2", 1)):
        record = await store.load(name)
        assert record is not None and record.last_event_id == last, name


async def test_a_sqlite_failure_of_one_op_does_not_fail_the_others_in_its_batch(
    gate: Gate, open_sqlite: OpenSqlite, tmp_path: Path
) -> None:
    store = await open_sqlite()
    for name in ("first", "good", "cursed"):
        await store.create(name, None)
    conn = sqlite3.connect(tmp_path / "sessions.db")  # make SQLite itself refuse one session's rows
    conn.execute(
        "CREATE TRIGGER curse BEFORE INSERT ON events WHEN NEW.session_id = 'cursed' "
        "BEGIN SELECT RAISE(ABORT, 'cursed row'); END"
    )
    conn.close()
    gate.batches.clear()
    errors: dict[str, BaseException] = {}

    async def append(name: str) -> None:
        try:
            await store.append(name, [event(0)])
        except StoreError as exc:
            errors[name] = exc

    gate.hold_next()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(append, "first")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(append, "good")
        nursery.start_soon(append, "cursed")
        await trio.testing.wait_all_tasks_blocked()
        gate.release()

    assert gate.batches[0] == [("_Append", "first")]
    assert sorted(gate.batches[1]) == [("_Append", "cursed"), ("_Append", "good")]  # shared...
    assert sorted(gate.batches[2:]) == [[("_Append", "cursed")], [("_Append", "good")]]  # ...then one by one
    assert set(errors) == {"cursed"}
    assert "cursed row" in str(errors["cursed"])
    assert [e.id for e in await store.events_after("good", -1, 10)] == [0]
    assert await store.events_after("cursed", -1, 10) == []
    cursed = await store.load("cursed")
    assert cursed is not None and cursed.last_event_id == -1


async def test_a_cancelled_append_still_waiting_for_its_batch_is_withdrawn(
    gate: Gate, open_sqlite: OpenSqlite
) -> None:
    store = await open_sqlite()
    await store.create("held", None)
    await store.create("cancelled", None)
    scope = trio.CancelScope()
    cancelled = False

    async def append_then_cancelled() -> None:
        nonlocal cancelled
        with scope:
            await store.append("cancelled", [event(0)])
        cancelled = scope.cancelled_caught

    gate.hold_next()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.append, "held", [event(0)])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(append_then_cancelled)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # cancelled while it waits behind the held batch: it never reaches SQLite
        await trio.testing.wait_all_tasks_blocked()
        gate.release()
    assert cancelled
    await store.append("held", [event(1)])  # the next batch would carry anything left queued
    assert [e.id for e in await store.events_after("held", -1, 10)] == [0, 1]
    assert await store.events_after("cancelled", -1, 10) == []
    assert [batch for batch in gate.batches if ("_Append", "cancelled") in batch] == []


async def test_pending_writes_are_bounded_and_callers_wait(gate: Gate, open_sqlite: OpenSqlite) -> None:
    store = await open_sqlite(max_pending=3)
    names = [f"s{i}" for i in range(10)]
    for name in names:
        await store.create(name, None)
    gate.batches.clear()
    gate.hold_next()
    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(store.append, name, [event(0)])
        await trio.testing.wait_all_tasks_blocked()
        # held in the thread + queued = the bound (3); the other 7 wait for a slot
        slots = store._writes._slots
        assert slots.value == 0 and slots.statistics().tasks_waiting == 7
        gate.release()
    assert max(len(batch) for batch in gate.batches) <= 3
    assert sum(len(batch) for batch in gate.batches) == 10  # nobody lost, nobody ran twice
    for name in names:
        assert [e.id for e in await store.events_after(name, -1, 10)] == [0]


async def test_close_waits_for_pending_commits(gate: Gate, open_sqlite: OpenSqlite) -> None:
    store = await open_sqlite()
    names = [f"s{i}" for i in range(20)]
    for name in names:
        await store.create(name, None)
    gate.hold_next()
    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(store.append, name, [event(0)])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(store.close)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(StoreError, match="not open"):  # closing: no new work accepted
            await store.append("s0", [event(1)])
        gate.release()
    reopened = await open_sqlite()
    for name in names:
        assert [e.id for e in await reopened.events_after(name, -1, 10)] == [0], name


async def test_full_synchronous_mode_works_too(open_sqlite: OpenSqlite) -> None:
    store = await open_sqlite(synchronous="full")
    await store.create("s1", None)
    await store.append("s1", [event(0)])
    assert [e.id for e in await store.events_after("s1", -1, 10)] == [0]


def test_an_unknown_synchronous_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore("x.db", synchronous="off")  # type: ignore[arg-type]
