"""Placement: which node hosts a session's one live incarnation, and the fencing token proving it.

Owns: ``Lease``, the ``Placement`` protocol and ``LocalPlacement`` (single node). Knows nothing of stores,
actors or the network; the Redis implementation lives in ``actors.cluster``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import trio

__all__ = ["Lease", "LocalPlacement", "Placement"]


@dataclass(frozen=True, slots=True)
class Lease:
    session_id: str
    node_id: str
    fence: int  # fencing token, strictly increasing per session across all nodes


class Placement(Protocol):
    node_id: str
    renew_interval: float | None  # seconds between renewals; None = never expires (local)

    async def acquire(self, session_id: str) -> Lease | None:
        """The lease, or None: another node holds it."""

    async def renew(self, lease: Lease) -> bool:
        """False: lost; stop emitting at once."""

    async def release(self, lease: Lease) -> None: ...

    async def owner_of(self, session_id: str) -> str | None:
        """The owning node's id, or None."""


class LocalPlacement:
    """A single node: always grants; the fence is a per-session counter in memory."""

    renew_interval: float | None = None

    def __init__(self, node_id: str = "local") -> None:
        self.node_id = node_id
        self._fences: dict[str, int] = {}
        self._held: set[str] = set()

    async def acquire(self, session_id: str) -> Lease | None:
        await trio.lowlevel.checkpoint()
        fence = self._fences.get(session_id, 0) + 1
        self._fences[session_id] = fence
        self._held.add(session_id)
        return Lease(session_id, self.node_id, fence)

    async def renew(self, lease: Lease) -> bool:
        await trio.lowlevel.checkpoint()
        return lease.session_id in self._held and self._fences.get(lease.session_id) == lease.fence

    async def release(self, lease: Lease) -> None:
        await trio.lowlevel.checkpoint()
        if self._fences.get(lease.session_id) == lease.fence:
            self._held.discard(lease.session_id)

    async def owner_of(self, session_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return self.node_id if session_id in self._held else None
