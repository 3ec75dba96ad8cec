"""Listing sessions for the admin API: live ones merged with the stored (passivated) ones, paginated.

Owns: ``list_sessions``: one page of sessions ordered by id after a cursor, optionally filtered by state.
Live sessions come from the supervisor's registry (their current state), the others from the store
(``passivated``); a session being created may be live before it is stored, and still shows up once. The
work per call is bounded: at most ``max_scan`` store pages are read; a page may then come back short with
a ``next_after`` cursor to continue from. A full page has a ``next_after`` only if a session follows it
(the listing peeks one further), so the last page, full or not, ends the walk. Knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from actors.lifecycle import ActorState
from actors.stores.base import SessionRecord, Store
from actors.supervisor import SessionInfo
from server.operator_api import views

PASSIVATED = ActorState.PASSIVATED.value


@dataclass(slots=True)
class Page:
    sessions: list[dict[str, Any]]
    next_after: str | None  # cursor for the next page; None when there is nothing more


async def list_sessions(
    store: Store,
    live: Iterable[SessionInfo],
    *,
    states: frozenset[str] | None = None,
    after: str | None = None,
    limit: int = 100,
    max_scan: int = 20,
) -> Page:
    """One page of sessions with id > ``after``, in id order, whose state is in ``states`` (None: any)."""
    live_by_id = {info.session_id: info for info in live if after is None or info.session_id > after}
    if states is not None and PASSIVATED not in states:
        # Only live states asked for: the registry has everything, no store read needed.
        chosen = sorted(
            (info for info in live_by_id.values() if info.state in states), key=lambda i: i.session_id
        )
        page = [views.live_session(info) for info in chosen[:limit]]
        more = len(chosen) > limit
        return Page(page, page[-1]["session_id"] if more and page else None)

    out: list[dict[str, Any]] = []
    cursor = after
    for _ in range(max_scan):
        records = await store.list_sessions(after=cursor, limit=limit + 1)  # one more: is there a next page?
        exhausted = len(records) <= limit
        records = records[:limit]
        upper = None if exhausted else records[-1].session_id
        for _id, info, record in _merge(records, live_by_id, cursor, upper):
            if info is not None:
                view = views.live_session(info, record)
            else:
                assert record is not None
                view = views.stored_session(record)
            if states is None or view["state"] in states:
                if len(out) == limit:  # a match after a full page: there is a next page
                    return Page(out, out[-1]["session_id"])
                out.append(view)
        if exhausted:
            return Page(out, None)
        cursor = upper
    return Page(out, cursor)  # scan budget spent: the caller continues from here


def _merge(
    records: list[SessionRecord],
    live_by_id: dict[str, SessionInfo],
    lower: str | None,
    upper: str | None,
) -> list[tuple[str, SessionInfo | None, SessionRecord | None]]:
    """Store records of one page plus the live sessions in (lower, upper] that the page lacks, by id."""
    merged: dict[str, tuple[str, SessionInfo | None, SessionRecord | None]] = {
        r.session_id: (r.session_id, live_by_id.get(r.session_id), r) for r in records
    }
    for session_id, info in live_by_id.items():
        if session_id in merged:
            continue
        if (lower is None or session_id > lower) and (upper is None or session_id <= upper):
            merged[session_id] = (session_id, info, None)
    return [merged[k] for k in sorted(merged)]
