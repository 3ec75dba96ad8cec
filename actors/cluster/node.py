"""One node's cluster wiring: the placement a store calls for (Redis: fenced leases shared by every node).

Owns: ``cluster_placement``. Given the node's store, returns the ``RedisPlacement`` a ``RedisStore`` needs
(and makes that store refuse unfenced appends, so nothing can write past the lease), or None for a
single-node store (the supervisor then uses ``LocalPlacement``). Knows nothing of ``server`` or of
configuration files: the caller passes the node id and the lease TTL.
"""

from __future__ import annotations

from actors.cluster.placement import RedisPlacement
from actors.stores.base import Store
from actors.stores.redis import RedisStore

__all__ = ["cluster_placement"]


def cluster_placement(store: Store, *, node_id: str, lease_ttl: float) -> RedisPlacement | None:
    """The placement for ``store``: a ``RedisPlacement`` on a ``RedisStore``, None for any other store."""
    if not isinstance(store, RedisStore):
        return None
    store.require_fence = True
    if store.timeout >= lease_ttl:
        # A call that hangs for the whole timeout must not outlive the lease it was made under.
        store.timeout = max(0.2, lease_ttl / 3)
    return RedisPlacement(store, node_id, lease_ttl=lease_ttl)
