"""The supervisor's side of placement: taking, renewing and releasing incarnations' leases.

Owns: ``Leases``. An incarnation takes its lease (``acquire``) before it loads, keeps it while it lives (in
memory or IDLE without a task) and gives it up (``release``) when it ends. When the placement's leases
expire (``renew_interval`` not None), one task (``renew_forever``) renews every held lease each interval;
a lease that cannot be renewed is reported to the host (``lease_lost``), which stops the actor before it
can append again (and the store's fencing refuses it anyway). ``LocalPlacement`` is used without a
scheduling round (its leases are plain memory).

Knows nothing of stores, actors' states or transports; an actor is anything with a ``lease`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

import structlog
import trio

from actors.placement import Lease, LocalPlacement, Placement

log = structlog.get_logger(__name__)


LOST_LEASE = Lease("", "", -1)
"""A holder's ``lease`` once it could not be renewed: never released, never renewed, never appended with."""


TAKEOVER_POLL = 0.1
"""Seconds between attempts to take a lease another holder has (poll, never keyspace events: CLUSTER.md
says 250 ms; 100 ms keeps a takeover well inside TTL + 250 ms on a loaded machine)."""


EXPIRY_SLACK = 0.002
"""Seconds after a lease's reported expiry before trying to take it (Redis expires it by its own clock)."""


class Leaseholder(Protocol):
    session_id: str
    lease: Lease | None


H = TypeVar("H", bound=Leaseholder)


class Leases:
    __slots__ = ("_local", "placement")

    def __init__(self, placement: Placement) -> None:
        self.placement = placement
        # Exactly the local placement (not a subclass, which may await): acquire and release inline.
        self._local = placement if type(placement) is LocalPlacement else None

    @property
    def renew_interval(self) -> float | None:
        return self.placement.renew_interval

    async def acquire(self, holder: Leaseholder) -> bool:
        """Take ``holder``'s lease; False when another node holds the session.

        With expiring leases (``lease_ttl`` on the placement), a lease held elsewhere is polled for every
        ``TAKEOVER_POLL`` seconds until it could have expired (TTL plus one poll): the holder may be a
        crashed process (this node before a restart, or a dead node) whose lease nobody will release;
        unless the placement says the holder is another node that is alive (``held_by_live_node``)."""
        local = self._local
        if local is not None:
            holder.lease = local.acquire_nowait(holder.session_id)
            return True
        lease = await self.placement.acquire(holder.session_id)
        ttl = getattr(self.placement, "lease_ttl", None)
        alive = getattr(self.placement, "held_by_live_node", None)
        if lease is None and alive is not None and await alive(holder.session_id):
            return False  # another node that is alive holds it: its lease will not lapse by itself
        if lease is None and isinstance(ttl, int | float):
            deadline = trio.current_time() + ttl + TAKEOVER_POLL
            expires_at = getattr(self.placement, "expires_at", None)
            while lease is None and trio.current_time() < deadline:
                await trio.sleep_until(self._next_attempt(holder.session_id, expires_at))
                lease = await self.placement.acquire(holder.session_id)
        if lease is None:
            return False
        holder.lease = lease
        return True

    @staticmethod
    def _next_attempt(session_id: str, expires_at: Callable[[str], float | None] | None) -> float:
        """One poll from now, or the moment the holder's lease expires (its PTTL at the refused acquire)
        if that comes first: a dead holder's lease is taken as it expires, not up to a poll later."""
        now = trio.current_time()
        at = now + TAKEOVER_POLL
        expiry = expires_at(session_id) if expires_at is not None else None
        if expiry is None or expiry + EXPIRY_SLACK <= now:  # unknown, or already due (never spin)
            return at
        return min(at, expiry + EXPIRY_SLACK)

    def release(self, holder: Leaseholder, nursery: trio.Nursery | None) -> None:
        """Give ``holder``'s lease up (in a task of ``nursery`` when the placement must await)."""
        lease, holder.lease = holder.lease, None
        if lease is None or lease is LOST_LEASE:
            return
        if self._local is not None:
            self._local.release_nowait(lease)
        elif nursery is not None:
            # After an idle passivation a placement may tell others (``RedisPlacement.release_announced``).
            announced = getattr(self.placement, "release_announced", None)
            if announced is not None and getattr(holder, "announce_release", False):
                nursery.start_soon(announced, lease)
            else:
                nursery.start_soon(self.placement.release, lease)

    async def release_when_possible(self, lease: Lease) -> None:
        """Give up a lease its holder stopped using, retrying while the store does not answer, until the
        lease would have expired anyway (compare-and-delete: harmless if another node has it by then)."""
        ttl = getattr(self.placement, "lease_ttl", None)
        deadline = trio.current_time() + (ttl if isinstance(ttl, int | float) else 0.0)
        while True:
            try:
                await self.placement.release(lease)
                return
            except Exception as exc:
                if trio.current_time() >= deadline:
                    log.info("lease.release_gave_up", session_id=lease.session_id, error=repr(exc))
                    return
            await trio.sleep(TAKEOVER_POLL)

    async def renew_forever(
        self, holders: Callable[[], Iterable[H]], lost: Callable[[H], None]
    ) -> None:
        interval = self.placement.renew_interval
        if interval is None:
            return
        expired = getattr(self.placement, "expired", None)
        async with trio.open_nursery() as nursery:
            if expired is not None:
                nursery.start_soon(self._stop_at_deadlines, expired, holders, lost, interval)
            # With deadlines, a failed renewal counts as kept: the watchdog stops the holder in time, and a
            # later renewal may succeed.
            failed_is_kept = expired is not None

            async def one_by_one(leases: list[Lease]) -> list[bool]:
                kept = []
                for lease in leases:
                    try:
                        kept.append(await self.placement.renew(lease))
                    except Exception as exc:
                        log.warning("lease.renew_failed", session_id=lease.session_id, error=repr(exc))
                        kept.append(failed_is_kept)
                return kept

            renew_many = getattr(self.placement, "renew_many", None) or one_by_one  # pipelined on Redis
            while True:
                await trio.sleep(interval)
                due = [(h, h.lease) for h in holders() if h.lease is not None and h.lease is not LOST_LEASE]
                try:
                    kept = list(await renew_many([lease for _, lease in due]))
                except Exception as exc:
                    log.warning("lease.renew_failed", sessions=len(due), error=repr(exc))
                    kept = [failed_is_kept] * len(due)
                for (holder, lease), ok in zip(due, kept, strict=True):
                    if not ok and holder.lease is lease:
                        lost(holder)

    @staticmethod
    async def _stop_at_deadlines(
        expired: Callable[[float], tuple[list[Lease], float | None]],
        holders: Callable[[], Iterable[H]],
        lost: Callable[[H], None],
        interval: float,
    ) -> None:
        """A holder that has not renewed by its placement's deadline (TTL minus a safety margin after the
        last renewal was sent) stops by itself: it may no longer own the session."""
        while True:
            now = trio.current_time()
            leases, next_deadline = expired(now)
            if leases:
                gone = set(leases)
                for holder in list(holders()):
                    if holder.lease in gone:
                        log.warning("lease.deadline_passed", session_id=holder.session_id)
                        lost(holder)
            wake = now + interval if next_deadline is None else min(next_deadline, now + interval)
            await trio.sleep_until(wake)
