"""Model-based test: random operation sequences give the same answers from MemoryStore and SqliteStore.

MemoryStore is the model. Writes on distinct sessions are also issued concurrently in rounds, so the SQLite
side sees them gathered into shared group-commit batches (with conflicts mixed in) and must still answer
each one exactly as the model answers it alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.events import StoredEvent
from actors.stores import MemoryStore, SessionRecord, SqliteStore, Store, load_with_events

SESSION = st.sampled_from(["a", "b", "c", "d", "ü"])
CREATE = st.tuples(st.just("create"), SESSION, st.sampled_from([None, "alice", "bob"]))
APPEND = st.tuples(st.just("append"), SESSION, st.sampled_from([-1, 0, 0, 0, 0, 1]), st.integers(1, 3))
SNAPSHOT = st.tuples(
    st.just("snapshot"), SESSION, st.integers(-2, 1), st.dictionaries(st.text(max_size=3), st.integers())
)
DELETE = st.tuples(st.just("delete"), SESSION)
WRITE = st.one_of(CREATE, APPEND, APPEND, SNAPSHOT, DELETE)
READ = st.one_of(
    st.tuples(st.just("load"), SESSION),
    st.tuples(st.just("load_with_events"), SESSION, st.integers(0, 4)),
    st.tuples(st.just("events_after"), SESSION, st.integers(-2, 6), st.integers(0, 4)),
    st.tuples(st.just("list"), st.one_of(st.none(), SESSION), st.integers(0, 3)),
    st.tuples(st.just("count")),
)
ROUND = st.tuples(st.just("round"), st.lists(WRITE, min_size=2, max_size=5, unique_by=lambda op: op[1]))
OPS = st.lists(st.one_of(WRITE, WRITE, READ, ROUND), max_size=40)


def record_view(record: SessionRecord | None) -> Any:
    if record is None:
        return None
    # created_at is each store's own clock reading; everything else must agree
    return (record.session_id, record.owner, record.last_event_id, record.snapshot, record.snapshot_event_id)


async def last_id(model: Store, session_id: str) -> int:
    record = await model.load(session_id)
    return -1 if record is None else record.last_event_id


async def concrete(model: Store, op: tuple[Any, ...]) -> tuple[Any, ...]:
    """Turn relative ids into absolute ones, from the model's state, so both stores get the same call."""
    kind = op[0]
    if kind == "append":
        _, sid, delta, count = op
        first = await last_id(model, sid) + 1 + delta
        return (
            "append",
            sid,
            [StoredEvent.create(i, {"n": i, "s": sid}) for i in range(first, first + count)],
        )
    if kind == "snapshot":
        _, sid, offset, snapshot = op
        return ("snapshot", sid, snapshot, await last_id(model, sid) + offset)
    return op


async def apply(store: Store, op: tuple[Any, ...]) -> Any:
    kind = op[0]
    try:
        if kind == "create":
            return record_view(await store.create(op[1], op[2]))
        if kind == "append":
            return await store.append(op[1], op[2])
        if kind == "snapshot":
            return await store.save_snapshot(op[1], op[2], op[3])
        if kind == "delete":
            return await store.delete(op[1])
        if kind == "load":
            return record_view(await store.load(op[1]))
        if kind == "load_with_events":
            record, found = await load_with_events(store, op[1], op[2])
            return record_view(record), [(e.id, e.payload, e.json_text) for e in found]
        if kind == "events_after":
            found = await store.events_after(op[1], op[2], op[3])
            return [(e.id, e.payload, e.json_text) for e in found]
        if kind == "list":
            return [record_view(r) for r in await store.list_sessions(after=op[1], limit=op[2])]
        if kind == "count":
            return await store.count_sessions()
    except Exception as exc:
        return ("raised", type(exc).__name__)
    raise AssertionError(f"unknown op {op}")


async def apply_concurrently(store: Store, ops: list[tuple[Any, ...]]) -> list[Any]:
    results: list[Any] = [None] * len(ops)

    async def one(index: int) -> None:
        results[index] = await apply(store, ops[index])

    async with trio.open_nursery() as nursery:
        for index in range(len(ops)):
            nursery.start_soon(one, index)
    return results


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
async def test_sqlite_store_answers_like_the_memory_model(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        model = MemoryStore()
        real = SqliteStore(Path(directory) / "model.db")
        async with model, real:
            for op in ops:
                if op[0] == "round":
                    calls = [await concrete(model, write) for write in op[1]]
                    expected = await apply_concurrently(model, calls)
                    assert await apply_concurrently(real, calls) == expected, calls
                else:
                    call = await concrete(model, op)
                    assert await apply(real, call) == await apply(model, call), call
            # the final states agree in full
            for sid in ["a", "b", "c", "d", "ü"]:
                assert await apply(real, ("load", sid)) == await apply(model, ("load", sid))
                assert await apply(real, ("events_after", sid, -1, 100)) == await apply(
                    model, ("events_after", sid, -1, 100)
                )
