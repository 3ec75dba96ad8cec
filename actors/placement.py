"""Placement: which node hosts a session's actor, decided by a lease with a fencing token.

Owns: ``Lease``, the ``Placement`` protocol and ``LocalPlacement`` (one node: every lease is granted and
never expires). The supervisor acquires a lease before it spawns an incarnation, renews it every
``renew_interval`` seconds (when not None; an owner that fails to renew stops its actor and never emits
again), and releases it when the incarnation ends. Every store append carries ``lease.fence``, so a store
that can check fences (Redis) refuses a writer that lost its lease (``actors.stores.base.FencedOut``).

Knows nothing of actors, stores or transports: a cluster implementation (a Redis lease) plugs in here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

import trio


@dataclass(frozen=True, slots=True)
class Lease:
    session_id: str
    node_id: str
    fence: int
    """Fencing token, strictly increasing per session across all nodes."""


class Placement(Protocol):
    node_id: str
    renew_interval: float | None
    """Seconds between renewals; None: leases never expire (a single node)."""

    async def acquire(self, session_id: str) -> Lease | None:
        """The lease of ``session_id`` for this node; None when another node holds it."""
        ...

    async def renew(self, lease: Lease) -> bool:
        """Extend ``lease``; False when it was lost (the owner must stop emitting at once)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease up (passivation, stop). No error if it was lost meanwhile."""
        ...

    async def owner_of(self, session_id: str) -> str | None:
        """The node id holding ``session_id``'s lease, or None."""
        ...


class LocalPlacement:
    """One node hosts every session: always grants, leases never expire, and nothing is kept per session.
    The fence comes from one counter in memory, which is strictly increasing per session too."""

    __slots__ = ("_fences", "node_id", "renew_interval")

    def __init__(self, node_id: str = "local") -> None:
        self.node_id = node_id
        self.renew_interval: float | None = None
        self._fences = itertools.count(1)

    def acquire_nowait(self, session_id: str) -> Lease:
        """``acquire`` without its checkpoint (the supervisor's spawn path takes it inline)."""
        return Lease(session_id, self.node_id, next(self._fences))

    async def acquire(self, session_id: str) -> Lease | None:
        await trio.lowlevel.checkpoint()
        return self.acquire_nowait(session_id)

    async def renew(self, lease: Lease) -> bool:
        await trio.lowlevel.checkpoint()
        return lease.node_id == self.node_id

    def release_nowait(self, lease: Lease) -> None:
        """Nothing to give back: no other node could want the session."""

    async def release(self, lease: Lease) -> None:
        self.release_nowait(lease)
        await trio.lowlevel.checkpoint()

    async def owner_of(self, session_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return self.node_id
