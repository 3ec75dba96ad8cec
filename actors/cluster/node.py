"""One node's cluster wiring: the placement a store calls for, and the node's cluster tasks.

Owns: ``cluster_placement`` and ``ClusterNode``. ``cluster_placement``: given the node's store, the
``RedisPlacement`` a ``RedisStore`` needs (and that store then refuses unfenced appends, so nothing can write
past the lease), or None for a single-node store (the supervisor uses ``LocalPlacement``). ``ClusterNode``:
doorbells, the batched idle polls, the inbox reader, the service of sessions other nodes own, their watchers
(connections on other nodes keep a session awake) and the cluster-wide per-user caps. Knows nothing of
``server`` or of configuration files: the caller passes the node id and the lease TTL.
"""

from __future__ import annotations

from typing import Any

import trio

from actors.cluster.answers import Answers
from actors.cluster.context import ClusterContext
from actors.cluster.doorbells import Doorbells
from actors.cluster.inbox_reader import InboxReader
from actors.cluster.nodes import NodeRegistry
from actors.cluster.placement import RedisPlacement
from actors.cluster.polling import IdlePolls
from actors.cluster.remote import RemoteSessions
from actors.cluster.users import UserCaps
from actors.cluster.watchers import Watchers
from actors.stores.base import Store, StoreError
from actors.stores.redis import RedisStore
from actors.supervisor import Supervisor

__all__ = ["ClusterNode", "cluster_placement"]


def cluster_placement(store: Store, *, node_id: str, lease_ttl: float) -> RedisPlacement | None:
    """The placement for ``store``: a ``RedisPlacement`` on a ``RedisStore``, None for any other store."""
    if not isinstance(store, RedisStore):
        return None
    store.require_fence = True
    if store.timeout >= lease_ttl:
        # A call that hangs for the whole timeout must not outlive the lease it was made under.
        store.timeout = max(0.2, lease_ttl / 3)
    return RedisPlacement(store, node_id, lease_ttl=lease_ttl)


IDLE_POLL_INTERVAL = 0.5
"""Seconds between the node's batched idle polls: how long a lost doorbell can delay an event or action."""


class ClusterNode:
    """This node's cluster tasks: the doorbells, the batched idle polls, the inbox reader of the sessions
    it owns, the service of sessions other nodes own (``RemoteSessions``, installed as the supervisor's
    ``remote`` hook) and the cluster-wide per-user caps (``UserCaps``, installed in its eviction)."""

    def __init__(
        self, store: RedisStore, placement: RedisPlacement, supervisor: Supervisor, *,
        idle_poll_interval: float = IDLE_POLL_INTERVAL,
    ) -> None:
        self.store = store
        self.placement = placement
        self.supervisor = supervisor
        self.doorbells = Doorbells(store)
        self.polls = IdlePolls(store, interval=idle_poll_interval)
        self.nodes = NodeRegistry(
            store, placement.node_id, lambda: len(placement.states),
            ttl=placement.lease_ttl, interval=placement.lease_ttl / 3,
        )
        self.answers = Answers()
        self.context = ClusterContext(store, placement, self.doorbells, self.polls, self.answers, supervisor)
        self.users = UserCaps(store, placement.node_id, supervisor.registry, supervisor.eviction,
                              interval=placement.lease_ttl / 3)
        self.inbox = InboxReader(self.context, on_request=self.users.obey)
        self.watchers = Watchers(store, placement.node_id, supervisor.eviction, ttl=placement.lease_ttl,
                                 linger=supervisor.config.close_delay)
        self.remote = RemoteSessions(self.context, self.inbox.kick, self.watchers)

    async def health_problem(self) -> str | None:
        """None while Redis answers a PING within a second; otherwise why this node is unhealthy."""
        try:
            with trio.fail_after(1.0):
                self.nodes.redis_latency = await self.store.ping()
        except (StoreError, trio.TooSlowError) as exc:
            return f"redis unreachable: {exc}"
        return None

    async def status_fields(self) -> dict[str, Any]:
        """``/admin/status`` additions: this node's id and the live nodes with their session counts."""
        try:
            nodes: list[dict[str, Any]] | None = await self.nodes.live_nodes()
        except StoreError:
            nodes = None
        return {"node_id": self.placement.node_id, "nodes": nodes}

    async def session_fields(self, session_id: str) -> dict[str, Any]:
        """``/admin/sessions/ID`` additions: the node holding the lease (or None) and its fence."""
        try:
            held = await self.placement.holder(session_id)
        except StoreError:
            return {"owner_node": None, "fence": None}
        return {"owner_node": None if held is None else held[0], "fence": None if held is None else held[1]}

    def counters(self) -> dict[str, float]:
        """Cluster metrics (``server.cluster_metrics`` exports them)."""
        return {
            "leases_held": len(self.placement.states),
            "takeovers": self.placement.takeovers,
            "routed_actions": self.answers.routed,
            "inbox_handed_over": self.inbox.handed_over,
            "tailed_sessions": self.remote.tailed_sessions,
            "fenced_refusals": self.supervisor.counters.get("fenced_refusals", 0),
            "idle_polls": self.polls.calls,
            "user_cap_requests": self.users.requested,
            "kept_awake": self.watchers.kept_awake,
            "redis_latency_seconds": self.nodes.redis_latency if self.nodes.redis_latency is not None else -1,
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; the supervisor sends other nodes' sessions here once this has started."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.doorbells.run)
            await nursery.start(self.inbox.run)
            await nursery.start(self.watchers.run)
            await nursery.start(self.remote.run)
            await nursery.start(self.nodes.run)
            await nursery.start(self.polls.run)
            await nursery.start(self.users.run)
            self.supervisor.remote = self.remote
            self.supervisor.eviction.user_caps = self.users
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self.supervisor.remote = None
                self.supervisor.eviction.user_caps = None
