"""Listing sessions: live ones merged with stored ones, ordered by id, filtered and paginated."""

from __future__ import annotations

from actors.stores.memory import MemoryStore
from actors.supervisor import SessionInfo
from server.operator_api.listing import list_sessions


def info(session_id: str, state: str = "idle") -> SessionInfo:
    return SessionInfo(
        session_id=session_id, state=state, owner="u", connections=0, mailbox_depth=0, last_activity=0.0,
        event_count=0, last_event_id=-1, restarts=0, turn_running=False, idle_deadline_in=None,
    )


async def store_with(*ids: str) -> MemoryStore:
    store = MemoryStore()
    await store.open()
    for session_id in ids:
        await store.create(session_id, "u")
    return store


async def test_live_sessions_show_their_state_and_others_are_passivated() -> None:
    store = await store_with("a", "b", "c")
    page = await list_sessions(store, [info("b", "active")])
    assert [(s["session_id"], s["state"], s["live"]) for s in page.sessions] == [
        ("a", "passivated", False), ("b", "active", True), ("c", "passivated", False),
    ]
    assert page.next_after is None


async def test_a_live_session_not_yet_stored_is_listed_once_in_order() -> None:
    store = await store_with("a", "c", "e")
    page = await list_sessions(store, [info("d", "loading"), info("c")], limit=2)
    assert [s["session_id"] for s in page.sessions] == ["a", "c"]
    assert page.next_after == "c"
    page = await list_sessions(store, [info("d", "loading"), info("c")], after="c", limit=2)
    assert [s["session_id"] for s in page.sessions] == ["d", "e"]
    page = await list_sessions(store, [info("z", "loading")], after="e", limit=2)
    assert [s["session_id"] for s in page.sessions] == ["z"]
    assert page.next_after is None


async def test_paging_visits_every_session_exactly_once() -> None:
    ids = [f"s{i:03d}" for i in range(0, 50)]
    store = await store_with(*ids[::2])
    live = [info(sid) for sid in ids[1::2]]
    seen: list[str] = []
    cursor = None
    while True:
        page = await list_sessions(store, live, after=cursor, limit=7)
        seen.extend(s["session_id"] for s in page.sessions)
        cursor = page.next_after
        if cursor is None:
            break
    assert seen == ids


async def test_filter_by_live_state_reads_only_the_registry() -> None:
    store = await store_with("a", "b")
    await store.close()  # a store read would fail
    page = await list_sessions(store, [info("b", "active"), info("c", "idle")], states=frozenset({"idle"}))
    assert [s["session_id"] for s in page.sessions] == ["c"]


async def test_filter_passivated_skips_live_sessions() -> None:
    store = await store_with("a", "b", "c")
    page = await list_sessions(store, [info("b")], states=frozenset({"passivated"}))
    assert [s["session_id"] for s in page.sessions] == ["a", "c"]


async def test_a_scan_budget_returns_a_short_page_with_a_cursor() -> None:
    store = await store_with(*[f"s{i:02d}" for i in range(20)])
    live = [info(f"s{i:02d}") for i in range(20)]
    page = await list_sessions(store, live, states=frozenset({"passivated"}), limit=2, max_scan=3)
    assert page.sessions == []
    assert page.next_after == "s05"


async def test_an_exactly_full_last_page_has_no_cursor() -> None:
    store = await store_with("a", "b", "c", "d")
    first = await list_sessions(store, [info("e", "active")], limit=3)
    assert [s["session_id"] for s in first.sessions] == ["a", "b", "c"] and first.next_after == "c"
    last = await list_sessions(store, [info("e", "active")], after="c", limit=2)
    assert [s["session_id"] for s in last.sessions] == ["d", "e"]
    assert last.next_after is None
    whole = await list_sessions(store, [], limit=4)
    assert len(whole.sessions) == 4 and whole.next_after is None
    # With a filter: the sessions after a full page that do not match do not make a next page.
    filtered = await list_sessions(store, [info("d", "idle")], states=frozenset({"passivated"}), limit=3)
    assert [s["session_id"] for s in filtered.sessions] == ["a", "b", "c"]
    assert filtered.next_after is None
