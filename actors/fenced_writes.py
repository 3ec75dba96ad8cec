"""An incarnation's writes with its placement lease: fenced appends and snapshots (optionally releasing).

Owns: ``append_fenced`` and ``save_snapshot``. Appends carry the lease's token (``FencedOut`` once it was
lost); routed actions' inbox ids go with them to a store that records them (Redis). Snapshots: a store
that checks fences on snapshots (``LeaseReleasingStore``: Redis) gets the lease's token, and on a final
passivation the lease is deleted in the same atomic step, so another node can take the session over at
once. Other stores (memory, SQLite: one node) get the plain call. Knows nothing of
actors' states; the caller forgets the lease when this returns True.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from actors.events import StoredEvent
from actors.leases import LOST_LEASE
from actors.placement import Lease
from actors.stores.base import FencedOut, Store
from actors.stores.fenced import LeaseReleasingStore

__all__ = ["append_fenced", "save_snapshot"]


async def append_fenced(
    store: Store,
    session_id: str,
    events: list[StoredEvent],
    lease: Lease | None,
    inbox_ids: Sequence[str | None] | None = None,
) -> None:
    """Append with the lease's fence; ``inbox_ids[k]``: the routed action ``events[k]`` answers."""
    if lease is LOST_LEASE:
        raise FencedOut(f"session {session_id}: the placement lease was lost")
    fence = None if lease is None else lease.fence
    if inbox_ids is not None and any(inbox_ids):
        inboxed: Any = store  # only a store with an inbox (Redis) is given routed actions
        await inboxed.append(session_id, events, fence=fence, inbox_ids=inbox_ids)
        return
    await store.append(session_id, events, fence=fence)


async def save_snapshot(
    store: Store, session_id: str, snapshot: dict[str, Any], head: int, lease: Lease | None, *, release: bool,
    announce: bool = False,
) -> bool:
    """Store the snapshot covering events up to ``head``. True: the lease was released with it."""
    if lease is LOST_LEASE:
        raise FencedOut(f"session {session_id}: the placement lease was lost; no snapshot")
    if lease is not None and getattr(store, "fenced_snapshots", False):
        releasing = cast(LeaseReleasingStore, store)
        await releasing.save_snapshot(session_id, snapshot, head, fence=lease.fence, release=release,
                                      announce=announce)
        return release
    await store.save_snapshot(session_id, snapshot, head)
    return False
