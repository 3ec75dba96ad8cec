"""SqliteStore's inline commits: small batches commit on the trio thread, gathered per scheduler pass;
big ones, deletes and ``synchronous="full"`` go to the worker thread; checkpoints run off the commit path."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from actors.events import StoredEvent
from actors.stores import SqliteStore
from actors.stores import sqlite as sqlite_module

from .conftest import OpenSqlite


def event(event_id: int, text: str = "") -> StoredEvent:
    return StoredEvent.create(event_id, {"message": f"m{event_id}{text}"})


def record_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread each write batch of the stores opened from now on ran on, in order."""
    seen: list[str] = []
    original = SqliteStore._write_batch

    def spy(self: SqliteStore, ops: Sequence[object], **options: bool) -> None:
        seen.append(threading.current_thread().name)
        original(self, ops, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteStore, "_write_batch", spy)
    return seen


async def test_appends_of_one_scheduler_pass_commit_once_on_the_trio_thread(
    open_sqlite: OpenSqlite, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = record_threads(monkeypatch)
    store = await open_sqlite()
    for n in range(20):
        await store.create(f"s{n}", None)
    threads.clear()
    before = store.stats()
    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(store.append, f"s{n}", [event(0), event(1)])
    after = store.stats()
    assert after["commits"] - before["commits"] == 1  # the leader waited one pass: all twenty joined it
    assert after["inline_write_batches"] - before["inline_write_batches"] == 1
    assert threads == [threading.main_thread().name]
    await store.close()
    reopened = await open_sqlite()
    for n in range(20):
        assert [e.id for e in await reopened.events_after(f"s{n}", -1, 10)] == [0, 1]


async def test_a_big_batch_and_a_delete_go_to_the_worker_thread(
    open_sqlite: OpenSqlite, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = record_threads(monkeypatch)
    store = await open_sqlite()
    await store.create("big", None)
    threads.clear()
    inline_before = store.stats()["inline_write_batches"]
    await store.append("big", [event(0, "x" * (sqlite_module.INLINE_MAX_BYTES + 1))])
    await store.delete("big")
    await store.create("small", None)
    main = threading.main_thread().name
    assert threads[0] != main and threads[1] != main
    assert threads[2] == main
    assert store.stats()["inline_write_batches"] - inline_before == 1


async def test_synchronous_full_never_commits_on_the_trio_thread(
    open_sqlite: OpenSqlite, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = record_threads(monkeypatch)
    store = await open_sqlite(synchronous="full")
    assert not store.inline_commits
    await store.create("s", None)
    await store.append("s", [event(0)])
    assert threads and threading.main_thread().name not in threads
    assert store.stats()["inline_write_batches"] == 0


async def test_checkpoints_run_every_so_many_commits_off_the_commit_path(
    open_sqlite: OpenSqlite, tmp_path: Path
) -> None:
    store = await open_sqlite()
    await store.create("s", None)
    probe = sqlite3.connect(tmp_path / "sessions.db")
    try:
        for n in range(sqlite_module.CHECKPOINT_EVERY * 2):
            await store.append("s", [event(n)])
        assert store.checkpoints == 2
        assert store.commits == sqlite_module.CHECKPOINT_EVERY * 2 + 1
        # the WAL was copied into the database: a PASSIVE checkpoint now has little left to copy
        busy, frames, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and frames == copied
    finally:
        probe.close()


async def test_the_writer_never_checkpoints_inside_a_commit(open_sqlite: OpenSqlite, tmp_path: Path) -> None:
    """Fewer than CHECKPOINT_EVERY commits of ~200 KiB each: SQLite's own autocheckpoint (1,000 pages, 4 MiB)
    would have restarted the WAL long before it grew to 16 MiB."""
    store = await open_sqlite()
    await store.create("s", None)
    for n in range(90):
        await store.append("s", [event(n, "x" * 200_000)])
    assert store.checkpoints == 0 and store.stats()["inline_write_batches"] >= 90
    assert (tmp_path / "sessions.db-wal").stat().st_size > 16 * 1024 * 1024


def test_an_inline_commit_survives_sigkill_of_the_process(tmp_path: Path) -> None:
    """Once ``append`` returned, the rows are in the WAL through the OS: a SIGKILL loses none of them."""
    db = tmp_path / "killed.db"
    program = textwrap.dedent(
        f"""
        import os, signal, sys, trio
        from actors.events import StoredEvent
        from actors.stores import SqliteStore

        async def main():
            store = SqliteStore({str(db)!r})
            await store.open()
            await store.create("s", None)
            for n in range(250):
                await store.append("s", [StoredEvent.create(n, {{"n": n}})])
            assert store.stats()["inline_write_batches"] >= 250
            print("appended", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        trio.run(main)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "appended" in done.stdout
    conn = sqlite3.connect(db)
    try:
        ids = [row[0] for row in conn.execute("SELECT id FROM events WHERE session_id = 's' ORDER BY id")]
    finally:
        conn.close()
    assert ids == list(range(250))


async def test_remembered_last_ids_follow_deletes_and_ignore_a_rolled_back_batch(
    open_sqlite: OpenSqlite, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors.stores import EventIdConflict, StoreError
    from actors.stores._sqlite_ops import _Batch

    store = await open_sqlite()
    await store.create("s", None)
    await store.append("s", [event(0), event(1)])
    await store.delete("s")
    await store.create("s", None)
    await store.append("s", [event(0)])  # the log starts again at 0 after the recreation
    original = _Batch.flush
    broken = {"left": 1}

    def flush_failing_once(self: _Batch) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise sqlite3.OperationalError("disk I/O error (injected)")
        original(self)

    monkeypatch.setattr(_Batch, "flush", flush_failing_once)
    with pytest.raises(StoreError):
        await store.append("s", [event(1)])  # rolled back: nothing stored, nothing remembered
    with pytest.raises(EventIdConflict):
        await store.append("s", [event(2)])  # the log still ends at 0
    await store.append("s", [event(1)])
    assert [e.id for e in await store.events_after("s", -1, 10)] == [0, 1]


async def test_the_wal_stays_bounded_under_sustained_concurrent_writes(
    open_sqlite: OpenSqlite, tmp_path: Path
) -> None:
    """Commits made while a PASSIVE checkpoint copies the WAL would keep the WAL from ever restarting (it
    grew past 100 MB here): the frames committed meanwhile are copied with writes held off, briefly."""
    store = await open_sqlite()
    for t in range(8):
        await store.create(f"s{t}", None)

    async def writer(t: int) -> None:
        for i in range(1500):
            await store.append(f"s{t}", [event(i, "x" * 200)])

    async with trio.open_nursery() as nursery:
        for t in range(8):
            nursery.start_soon(writer, t)
    wal = (tmp_path / "sessions.db-wal").stat().st_size
    db = (tmp_path / "sessions.db").stat().st_size
    assert store.checkpoints > 0
    assert wal < 2 * db + 8 * 1024 * 1024, (wal, db, store.stats())


async def test_a_database_locked_by_another_program_does_not_stall_the_event_loop(
    open_sqlite: OpenSqlite, tmp_path: Path
) -> None:
    """An inline commit never waits for a lock: it hands the batch to the worker thread, which waits."""
    import time

    store = await open_sqlite()
    for t in range(3):
        await store.create(f"s{t}", None)
    locked, release = threading.Event(), threading.Event()

    def hold_write_lock() -> None:  # an operator's sqlite3 shell, a backup tool
        conn = sqlite3.connect(tmp_path / "sessions.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(10)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    locked.wait(10)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await trio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        async with trio.open_nursery() as writers:
            for t in range(3):
                writers.start_soon(store.append, f"s{t}", [event(0)])
            await trio.sleep(1.0)  # the writers wait for the lock in the worker thread meanwhile
            release.set()
        nursery.cancel_scope.cancel()
    holder.join()
    assert max(gaps) < 0.5, f"the event loop stood still for {max(gaps):.2f} s"
    for t in range(3):  # and the appends went through once the lock was free
        assert [e.id for e in await store.events_after(f"s{t}", -1, 10)] == [0]
