"""Leases on Redis: one fenced owner per session across every node of a cluster.

Owns: ``RedisPlacement`` (the ``actors.placement.Placement`` protocol on Redis) and ``LeaseState``. The
lease is ``sess:{sid}:lease = "<node>:<fence>"`` with a PX TTL; the fence comes from ``INCR
sess:{sid}:fence``, so tokens strictly increase per session whichever node acquires. Acquire, renew and
release are Lua functions (compare-and-set), never read-then-write from here. Knows nothing of actors or
of when to renew: the owner of the lease (the supervisor) calls ``renew_many`` (pipelined) every
``renew_interval`` and must stop emitting once ``must_stop_at`` passes without a successful renewal.

Expiry uses Redis's wall clock; ``must_stop_at`` is measured on this process's trio clock from the moment
the acquire or renew was *sent*, minus ``safety_margin``, so a paused or slow node stops before another one
can have taken over. Its appends are refused by the fence in any case.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio

from actors.placement import Lease
from actors.stores._redis_keys import SessionKeys, node_ring
from actors.stores.redis import RedisStore

__all__ = ["LeaseState", "RedisPlacement", "default_node_id"]

RENEW_BATCH = 200  # renewals per pipelined round trip: 1000 cost ~30 ms pipelined, ~0.65 s one by one here;
# 200 keep the event loop from being blocked by one batch's replies for more than a few ms


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(slots=True)
class LeaseState:
    """What the owner tracks about one held lease: when it must stop if no renewal succeeds."""

    lease: Lease
    must_stop_at: float  # trio.current_time() deadline


class RedisPlacement:
    """``Placement`` on the store's Redis. ``lease_ttl`` seconds (default 10), renewed every TTL/3."""

    def __init__(
        self,
        store: RedisStore,
        node_id: str | None = None,
        *,
        lease_ttl: float = 10.0,
        safety_margin: float | None = None,
    ) -> None:
        node = node_id or default_node_id()
        if not node or any(ch in node for ch in "{} \n"):
            raise ValueError(f"node id {node!r} must be non-empty without braces, spaces or newlines")
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be > 0")
        self.store = store
        self.node_id = node
        self.lease_ttl = lease_ttl
        self.renew_interval: float | None = lease_ttl / 3
        # The owner stops this long before the lease can expire in Redis (1 s for the default 10 s TTL).
        self.safety_margin = safety_margin if safety_margin is not None else min(1.0, lease_ttl / 10)
        self.states: dict[str, LeaseState] = {}  # session id -> the lease this node holds
        self.takeovers = 0  # leases acquired after another holder had them (crash, pause, passivation)
        # Sessions whose last acquire found another holder -> when that holder's lease expires (trio clock,
        # from the PTTL ACQUIRE reported): a taker polls again then, not a fixed interval later.
        self._refused: dict[str, tuple[float, str]] = {}  # session -> (expiry, holder) at the last refusal

    def __repr__(self) -> str:
        return f"RedisPlacement(node_id={self.node_id!r}, lease_ttl={self.lease_ttl})"

    @property
    def _ttl_ms(self) -> str:
        return str(max(1, int(self.lease_ttl * 1000)))

    def _value(self, lease: Lease) -> str:
        return f"{lease.node_id}:{lease.fence}"

    def must_stop_at(self, session_id: str) -> float | None:
        state = self.states.get(session_id)
        return None if state is None else state.must_stop_at

    def expired(self, now: float) -> tuple[list[Lease], float | None]:
        """The held leases whose ``must_stop_at`` has passed (forgotten here: their owner must stop now),
        and the earliest deadline of the others (None if no lease is held)."""
        gone = [sid for sid, state in self.states.items() if state.must_stop_at <= now]
        leases = [self.states.pop(sid).lease for sid in gone]
        return leases, min((state.must_stop_at for state in self.states.values()), default=None)

    async def acquire(self, session_id: str) -> Lease | None:
        """The lease with a new fence, or None while another holder (any node, this one included) has it."""
        keys = SessionKeys(session_id)
        sent = trio.current_time()
        reply: Any = await self.store.fcall(
            "acquire the lease", "ss_acquire", [keys.lease, keys.fence], [self.node_id, self._ttl_ms],
            session_id,
        )
        if int(reply[0]) != 1:
            if session_id in self._refused or len(self._refused) < 100_000:
                holder = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
                self._refused[session_id] = (sent + max(0, int(reply[2])) / 1000, holder.rpartition(":")[0])
            return None
        if self._refused.pop(session_id, None) is not None:
            self.takeovers += 1
        lease = Lease(session_id, self.node_id, int(reply[1]))
        self.states[session_id] = LeaseState(lease, sent + self.lease_ttl - self.safety_margin)
        return lease

    def expires_at(self, session_id: str) -> float | None:
        """When the lease another holder had at this node's last refused acquire expires (trio clock, a
        lower bound: measured from when the acquire was sent), None if unknown."""
        refused = self._refused.get(session_id)
        return None if refused is None else refused[0]

    async def held_by_live_node(self, session_id: str) -> bool:
        """True when the holder of this node's last refused acquire is another node that is alive (its
        ring has a subscriber): its lease will not expire by itself, so there is no point waiting for it
        (two nodes that host a new session at once: the loser serves it from the log instead)."""
        refused = self._refused.get(session_id)
        if refused is None or refused[1] == self.node_id:
            return False  # unknown, or this node's own earlier process: wait for that lease to expire
        client = self.store.client
        ring = node_ring(refused[1])
        reply: Any = await self.store.call("count the holder's listeners",
                                           lambda: client.pubsub_numsub(ring), session_id)
        return any(int(count) > 0 for count in reply.values())

    async def holder(self, session_id: str) -> tuple[str, int, float] | None:
        """(node, fence, seconds left) of the current lease, or None."""
        keys = SessionKeys(session_id)
        client = self.store.client
        value: Any = await self.store.call("read the lease", lambda: client.get(keys.lease), session_id)
        if value is None:
            return None
        node, _, fence = value.decode().rpartition(":")
        left: Any = await self.store.call("read the lease", lambda: client.pttl(keys.lease), session_id)
        return node, int(fence), max(0.0, int(left) / 1000)

    async def renew(self, lease: Lease) -> bool:
        """Extend the lease by the TTL if it is still ours; False: lost (stop emitting at once)."""
        keys = SessionKeys(lease.session_id)
        sent = trio.current_time()
        reply: Any = await self.store.fcall(
            "renew the lease", "ss_renew", [keys.lease], [self._value(lease), self._ttl_ms], lease.session_id
        )
        return self._renewed(lease, int(reply) == 1, sent)

    async def renew_many(self, leases: Sequence[Lease]) -> list[bool]:
        """``renew`` of each lease, pipelined (``RENEW_BATCH`` per round trip): the renewal loop's call.
        A Redis error fails the whole call (each lease's deadline then stops its holder in time)."""
        client, kept = self.store.client, []
        for start in range(0, len(leases), RENEW_BATCH):
            chunk = leases[start : start + RENEW_BATCH]

            async def send(chunk: Sequence[Lease] = chunk) -> Any:
                async with client.pipeline(transaction=False) as pipe:
                    for lease in chunk:
                        pipe.fcall("ss_renew", [SessionKeys(lease.session_id).lease],
                                   [self._value(lease), self._ttl_ms])
                return pipe.results

            sent = trio.current_time()
            replies = await self.store.call(f"renew {len(chunk)} leases", send)
            kept += [self._renewed(lease, int(reply) == 1, sent)
                     for lease, reply in zip(chunk, replies, strict=True)]
        return kept

    def _renewed(self, lease: Lease, kept: bool, sent: float) -> bool:
        if not kept:
            self.states.pop(lease.session_id, None)
            return False
        state = self.states.get(lease.session_id)
        if state is not None and state.lease == lease:
            state.must_stop_at = sent + self.lease_ttl - self.safety_margin
        else:
            self.states[lease.session_id] = LeaseState(lease, sent + self.lease_ttl - self.safety_margin)
        return True

    async def release_announced(self, lease: Lease) -> None:
        """``release``, publishing ``released`` on the session's doorbell if the lease was still ours
        (nodes that serve its connections host it next: ``actors.cluster.watchers``)."""
        await self._release(lease, announce=True)

    async def release(self, lease: Lease) -> None:
        """Delete the lease if it is still ours (so another node can take over at once)."""
        await self._release(lease, announce=False)

    async def _release(self, lease: Lease, *, announce: bool) -> None:
        keys = SessionKeys(lease.session_id)
        self.store.client  # noqa: B018  (raises when not open, before the lease is forgotten here)
        state = self.states.get(lease.session_id)
        if state is not None and state.lease == lease:
            del self.states[lease.session_id]
        await self.store.fcall(
            "release the lease", "ss_release", [keys.lease],
            [self._value(lease), keys.channel] if announce else [self._value(lease)], lease.session_id,
        )

    async def owner_of(self, session_id: str) -> str | None:
        found = await self.holder(session_id)
        return None if found is None else found[0]
