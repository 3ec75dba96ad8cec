"""Connections on other nodes count: they keep a session's owner from passivating it, and hear it close.

Owns: ``Watchers``, the node's bookkeeping of the sessions it serves from a tail (``RemoteSessions``) and
the owner side of that bookkeeping. Knows the Lua functions ``ss_watch`` / ``ss_watched``, the doorbell
notice format (``actors.cluster.tail``) and the supervisor's ``Eviction`` hooks; knows nothing of
transports or of what the tails feed.

- **Watching.** A node that serves connections of a session it does not own records itself in the
  session's watcher hash (``sess:{sid}:watch``, node -> expiry in Redis's own time): at the tail's start,
  again every ``interval`` (TTL/3, for every session it tails, one call each), and when its last connection
  leaves it keeps its entry for this node's ``close_delay`` (``linger``) more, so a brief disconnect on
  another node is as brief as on the owner. A dead node's entries expire after the lease TTL.
- **The owner's idle deadline** (``Eviction.idle_guard``): when the deadline of a session without
  connections here passes, ``ss_watched`` reads the hash; while any entry is live the deadline is re-armed
  to that entry's expiry (at most ``interval`` away), otherwise the session is passivated as on a single
  node. A Redis error re-arms
  the deadline ``interval`` later (passivating would need Redis anyway). A node that joins a session at
  the very moment its owner passivates it is covered by the ``released`` notice: its tail hosts the
  session again (``RemoteSessions``), since someone is there.
- **Closing** (``announce_closed``): an owner that closes a session's connections with a status before
  passivating it (an operator's passivation, a user over the cap; not a shutdown, which hands the session
  over) publishes the status on the session's doorbell, before the lease is released, and the other
  nodes' tails close their connections with it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
import trio

from actors.cluster.tail import closed_notice
from actors.stores._redis_keys import SessionKeys
from actors.stores.base import StoreError
from actors.stores.redis import RedisStore

if TYPE_CHECKING:
    from actors.actor import SessionActor
    from actors.eviction import Eviction

__all__ = ["Watchers"]

log = structlog.get_logger(__name__)

QUEUE = 4096  # idle deadlines waiting to be checked; beyond it a deadline is re-armed instead


class Watchers:
    def __init__(
        self, store: RedisStore, node_id: str, eviction: Eviction, *, ttl: float, linger: float | None
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.eviction = eviction
        self.ttl = ttl
        self.interval = ttl / 3
        self.linger = linger or 0.0
        self.kept_awake = 0  # idle deadlines re-armed because another node serves the session
        self._watched: set[str] = set()
        self._checks, self._to_check = trio.open_memory_channel["SessionActor"](QUEUE)
        self._nursery: trio.Nursery | None = None

    @property
    def watched(self) -> int:
        return len(self._watched)

    # ---- the tailing side ---------------------------------------------------------------------------

    async def watch(self, session_id: str) -> None:
        """This node serves connections of ``session_id`` from now on (until ``unwatch``). Best effort: a
        Redis error is logged and the next refresh writes the entry."""
        self._watched.add(session_id)
        try:
            await self._set(session_id, self.ttl)
        except StoreError as exc:
            log.warning("cluster.watch_failed", session_id=session_id, error=str(exc))

    def unwatch(self, session_id: str, *, closed: bool = False) -> None:
        """The last connection here left (``closed``: the owner closed them): linger, then count no more."""
        self._watched.discard(session_id)
        if self._nursery is not None:
            self._nursery.start_soon(self._set_quietly, session_id, 0.0 if closed else self.linger)

    async def _set(self, session_id: str, seconds: float) -> None:
        keys = SessionKeys(session_id)
        await self.store.fcall("watch the session", "ss_watch", [keys.watchers],
                               [self.node_id, str(int(seconds * 1000))], session_id)

    async def _set_quietly(self, session_id: str, seconds: float) -> None:
        if session_id in self._watched:
            return  # watched again meanwhile: the refresh owns the entry
        try:
            await self._set(session_id, seconds)
        except StoreError as exc:
            log.warning("cluster.unwatch_failed", session_id=session_id, error=str(exc))

    async def _refresh_forever(self) -> None:
        while True:
            await trio.sleep(self.interval)
            for session_id in list(self._watched):
                if session_id not in self._watched:
                    continue
                try:
                    await self._set(session_id, self.ttl)
                except StoreError as exc:
                    log.warning("cluster.watch_refresh_failed", session_id=session_id, error=str(exc))
                    break  # Redis is away: the next round tries them all again

    # ---- the owner side -----------------------------------------------------------------------------

    def idle_expired(self, actor: SessionActor) -> None:
        """``Eviction.idle_guard``: the idle deadline of ``actor`` passed; is anyone on another node there?"""
        try:
            self._checks.send_nowait(actor)
        except trio.WouldBlock:
            self.eviction.rearm_idle(actor, self.interval)

    async def _check(self, actor: SessionActor) -> None:
        keys = SessionKeys(actor.session_id)
        try:
            left: Any = await self.store.fcall("read the watchers", "ss_watched", [keys.watchers], [],
                                               actor.session_id)
        except StoreError as exc:
            log.warning("cluster.watchers_unreadable", session_id=actor.session_id, error=str(exc))
            self.eviction.rearm_idle(actor, self.interval)
            return
        if int(left) > 0:
            self.kept_awake += 1
            # Look again when the last entry expires, or within ``interval``: an entry lingering after its
            # node's last leave is then followed by the passivation at most ``interval`` late.
            self.eviction.rearm_idle(actor, min(int(left) / 1000 + 0.05, self.interval))
        else:
            self.eviction.passivate_idle(actor)

    async def announce_closed(self, session_id: str, status: dict[str, Any], fence: int) -> None:
        """Tell the nodes tailing ``session_id`` that its owner (lease ``fence``) closed its connections
        with ``status``."""
        client = self.store.client
        notice = closed_notice(fence, status)
        channel = SessionKeys(session_id).channel
        try:
            await self.store.call("announce the close", lambda: client.publish(channel, notice), session_id)
        except StoreError as exc:
            log.warning("cluster.close_announce_failed", session_id=session_id, error=str(exc))

    # ---- running ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._refresh_forever)
            self.eviction.idle_guard = self
            task_status.started()
            try:
                async for actor in self._to_check:
                    await self._check(actor)
            finally:
                self.eviction.idle_guard = None
                self._nursery = None
