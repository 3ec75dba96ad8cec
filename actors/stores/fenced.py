"""The Store protocol with fenced appends, as cluster mode uses it (the brief's placement seam).

Owns: ``FencedStore``. ``actors.stores.base.Store`` itself is unchanged until the integration adds the
``fence`` keyword there; a store that can check fences (Redis) raises ``FencedOut`` when ``fence`` is not the
session's current lease token. Knows nothing else.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors.events import StoredEvent
from actors.stores.base import Store

__all__ = ["FencedStore", "LeaseReleasingStore"]


class FencedStore(Store, Protocol):
    async def append(self, session_id: str, events: list[StoredEvent], *, fence: int | None = None) -> None:
        """As ``Store.append``; refused with ``FencedOut`` unless ``fence`` is the current lease's token."""

    async def save_snapshot(
        self, session_id: str, snapshot: dict[str, Any], event_id: int, *, fence: int | None = None
    ) -> None:
        """As ``Store.save_snapshot``, fenced the same way."""


class LeaseReleasingStore(Protocol):
    """A store whose snapshots are fenced and can release the lease in the same step (Redis).
    ``fenced_snapshots`` is True on such a store (``actors.snapshots`` checks it)."""

    fenced_snapshots: bool

    async def save_snapshot(
        self,
        session_id: str,
        snapshot: dict[str, Any],
        event_id: int,
        *,
        fence: int | None = None,
        release: bool = False,
        announce: bool = False,
    ) -> None:
        """Refused with ``FencedOut`` unless the lease has token ``fence``; ``release`` deletes the lease
        (``announce``: and tells the nodes serving the session's connections that nobody holds it)."""
