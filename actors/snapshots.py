"""Saving an incarnation's snapshot with its placement lease: fenced, and optionally releasing the lease.

Owns: ``save_snapshot``. A store that checks fences on snapshots (``LeaseReleasingStore``: Redis) gets the
lease's token, and on a final passivation the lease is deleted in the same atomic step, so another node can
take the session over at once. Other stores (memory, SQLite: one node) get the plain call. Knows nothing of
actors' states; the caller forgets the lease when this returns True.
"""

from __future__ import annotations

from typing import Any, cast

from actors.leases import LOST_LEASE
from actors.placement import Lease
from actors.stores.base import FencedOut, Store
from actors.stores.fenced import LeaseReleasingStore

__all__ = ["save_snapshot"]


async def save_snapshot(
    store: Store, session_id: str, snapshot: dict[str, Any], head: int, lease: Lease | None, *, release: bool
) -> bool:
    """Store the snapshot covering events up to ``head``. True: the lease was released with it."""
    if lease is LOST_LEASE:
        raise FencedOut(f"session {session_id}: the placement lease was lost; no snapshot")
    if lease is not None and getattr(store, "fenced_snapshots", False):
        releasing = cast(LeaseReleasingStore, store)
        await releasing.save_snapshot(session_id, snapshot, head, fence=lease.fence, release=release)
        return release
    await store.save_snapshot(session_id, snapshot, head)
    return False
