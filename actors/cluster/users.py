"""Per-user caps across the cluster: a user's live sessions are counted on every node, not only this one.

Owns: ``UserCaps`` (installed as ``Eviction.user_caps`` by ``ClusterNode``). The user's index
``user:{uid}:live`` (a hash: session id -> ``"<fence> <last activity, unix ms>"``) names the sessions the
user has had live on any node. It is only a hint: a session counts while its lease exists, and the lease
is the truth. So a passivated session (its lease released with its snapshot) stops counting at once, and a
dead node's sessions stop counting when their leases expire. The reader that finds an entry whose lease is
gone removes it (``ss_user_forget``: compare-and-delete on the fence, so an entry a newer owner just wrote
stays).

When this node loads a session for a user who has a cap, one worker task (in order, so two loads here
never race each other): records the session and reads the user's index in one step (``ss_user_enter``),
reads the others' leases in one ``MGET``, and if more than ``cap`` are live, passivates the least recently
active ones beyond the cap, however many that is (one being passivated still holds its lease: choosing it
again is harmless, and the count stays right). A victim on this node goes through
``Eviction.evict_for_user``; a victim on another node gets a request through the session's inbox
(``actors.cluster.inbox.request``: the routed actions' transport and the owner's doorbell), naming the
victim's lease fence; the owner's ``InboxReader`` hands it to ``obey`` there, which evicts the same way.

Activity: an entry carries the session's last activity when it was written: at the load, then every
``interval`` for this node's sessions whose activity changed (a remote session's activity is at most one
interval old; this node's own sessions use their exact activity). Redis errors skip one check (logged);
the next load counts again. Knows nothing of transports, and of actors only what eviction needs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
import trio

from actors.cluster.inbox import request
from actors.errors import ActorError
from actors.eviction import Eviction
from actors.leases import LOST_LEASE
from actors.registry import Registry
from actors.stores._redis_keys import SessionKeys, user_sessions
from actors.stores.base import StoreError
from actors.stores.redis import RedisStore

if TYPE_CHECKING:
    from actors.actor import SessionActor

__all__ = ["PASSIVATE", "UserCaps"]

log = structlog.get_logger(__name__)

PASSIVATE = "passivate"
"""The request ``"passivate <fence> user_cap"``: passivate the session held under lease ``fence``."""

QUEUE = 4096  # loads waiting to be counted (bounded; beyond it a load is not counted, and logged)


@dataclass(slots=True)
class _Tracked:
    """One of this node's sessions in its user's index: what was written last."""

    user: str
    fence: int
    last_activity: float  # the actor's (trio clock) value when the entry was written


@dataclass(frozen=True, slots=True)
class _Live:
    session_id: str
    node: str
    fence: int
    activity_ms: float


def _wall_ms(actor: SessionActor) -> int:
    """The actor's last activity (trio clock) as unix milliseconds, comparable across nodes."""
    return int((time.time() - (trio.current_time() - actor.last_activity)) * 1000)


class UserCaps:
    def __init__(
        self, store: RedisStore, node_id: str, registry: Registry, eviction: Eviction, *, interval: float
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.registry = registry
        self.eviction = eviction
        self.interval = interval
        self.evicted_here = 0  # victims of this node's counts that lived here
        self.requested = 0  # victims of this node's counts that live elsewhere: requests routed
        self.obeyed = 0  # requests of other nodes that passivated a session here
        self.skipped = 0  # loads not counted (queue full, Redis errors)
        self._tracked: dict[str, _Tracked] = {}
        self._send, self._receive = trio.open_memory_channel[tuple["SessionActor", int]](QUEUE)

    # ---- the Eviction hook, and requests from other nodes ---------------------------------------------

    def loaded(self, actor: SessionActor, cap: int) -> None:
        """``actor`` (this node's, with an owner) was just loaded: count its user's sessions soon."""
        try:
            self._send.send_nowait((actor, cap))
        except trio.WouldBlock:
            self.skipped += 1
            log.warning("cluster.user_cap_queue_full", session_id=actor.session_id)

    def obey(self, session_id: str, fence: int, text: str) -> None:
        """An ``InboxReader`` request for a session held here under ``fence``."""
        if not text.startswith(PASSIVATE):
            log.warning("cluster.unknown_request", session_id=session_id, request=text)
            return
        actor = self.registry.get(session_id)
        held = actor is not None and actor.lease is not None and actor.lease.fence == fence
        if held and actor is not None and self.eviction.evict_for_user(actor):
            self.obeyed += 1

    # ---- running ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._refresh_forever)
            task_status.started()
            async for actor, cap in self._receive:
                try:
                    await self.count(actor, cap)
                except (StoreError, ActorError) as exc:
                    self.skipped += 1
                    log.warning("cluster.user_cap_failed", session_id=actor.session_id, error=str(exc))

    async def count(self, actor: SessionActor, cap: int) -> None:
        """Record ``actor`` in its user's index; beyond ``cap`` live sessions, passivate the oldest."""
        lease, user, sid = actor.lease, actor.owner, actor.session_id
        if lease is None or lease is LOST_LEASE or user is None or self.registry.get(sid) is not actor:
            return  # gone meanwhile (or fenced out): nothing to record
        key = user_sessions(user)
        client = self.store.client
        entry = f"{lease.fence} {_wall_ms(actor)}"
        flat: Any = await self.store.fcall(
            "count the user's sessions", "ss_user_enter", [key], [sid, entry], sid
        )
        self._tracked[sid] = _Tracked(user, lease.fence, actor.last_activity)
        index = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
        index.pop(sid, None)
        if len(index) < cap:
            return  # even if every other one is live, the user is within the cap
        others = list(index)
        leases: Any = await self.store.call(
            "read the user's leases", lambda: client.mget([SessionKeys(s).lease for s in others]), sid
        )
        live: list[_Live] = []
        stale: list[str] = []
        for other, holder in zip(others, leases, strict=True):
            fence_word, _, activity = index[other].partition(" ")
            if holder is None:
                stale += [other, fence_word]
                continue
            node, _, fence = holder.decode().rpartition(":")
            live.append(_Live(other, node, int(fence), self._activity(other, node, int(fence), activity)))
        if stale:
            await self.store.fcall("forget ended sessions", "ss_user_forget", [key], stale)
        excess = len(live) + 1 - cap
        for victim in sorted(live, key=lambda v: v.activity_ms)[: max(0, excess)]:
            await self._evict(victim)

    def _activity(self, session_id: str, node: str, fence: int, written: str) -> float:
        if node == self.node_id:
            actor = self.registry.get(session_id)
            if actor is not None and actor.lease is not None and actor.lease.fence == fence:
                return _wall_ms(actor)
        try:
            return float(written)
        except ValueError:
            return 0.0

    async def _evict(self, victim: _Live) -> None:
        if victim.node == self.node_id:
            actor = self.registry.get(victim.session_id)
            held = actor is not None and actor.lease is not None and actor.lease.fence == victim.fence
            if held and actor is not None and self.eviction.evict_for_user(actor):
                self.evicted_here += 1
            return  # otherwise: a lease of this node's previous process, which expires by itself
        routed = await request(self.store, victim.session_id, f"{PASSIVATE} {victim.fence} user_cap")
        self.requested += 1
        if routed.owner is None or routed.receivers == 0:
            log.info("cluster.user_cap_owner_silent", session_id=victim.session_id, owner=routed.owner)

    # ---- keeping this node's entries fresh -----------------------------------------------------------

    async def _refresh_forever(self) -> None:
        while True:
            await trio.sleep(self.interval)
            try:
                await self.refresh()
            except StoreError as exc:
                log.warning("cluster.user_index_refresh_failed", error=str(exc))

    async def refresh(self) -> None:
        """Write the activity of this node's sessions that changed; forget the entries of those gone."""
        changed: dict[str, list[str]] = {}
        gone: dict[str, list[str]] = {}
        for sid, tracked in list(self._tracked.items()):
            actor = self.registry.get(sid)
            lease = None if actor is None else actor.lease
            if actor is None or lease is None or lease.fence != tracked.fence:
                del self._tracked[sid]
                gone.setdefault(tracked.user, []).extend([sid, str(tracked.fence)])
            elif actor.last_activity != tracked.last_activity:
                tracked.last_activity = actor.last_activity
                changed.setdefault(tracked.user, []).extend([sid, f"{tracked.fence} {_wall_ms(actor)}"])
        client = self.store.client
        async with trio.open_nursery() as nursery:  # coredis multiplexes concurrent calls
            for user, pairs in changed.items():
                mapping = dict(zip(pairs[::2], pairs[1::2], strict=True))
                write = partial(client.hset, user_sessions(user), mapping)
                nursery.start_soon(self._logged, "refresh the user's index", write)
            for user, pairs in gone.items():
                forget = partial(client.fcall, "ss_user_forget", [user_sessions(user)], pairs)
                nursery.start_soon(self._logged, "forget ended sessions", forget)

    async def _logged(self, what: str, make: Callable[[], Awaitable[object]]) -> None:
        """One refresh call; a failure is logged (the next interval writes again, readers check leases)."""
        try:
            await self.store.call(what, make)
        except StoreError as exc:
            log.warning("cluster.user_index_refresh_failed", what=what, error=str(exc))
