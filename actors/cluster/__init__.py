"""Cluster mode on Redis: leases with fencing tokens, routing actions to a session's owner, doorbells and
log tails. Built on ``actors.stores.redis.RedisStore``'s client; knows nothing of ``server``.
"""

from actors.cluster.doorbells import Doorbells
from actors.cluster.inbox import (
    InboxEntry,
    InboxFull,
    Ring,
    RouteResult,
    parse_ring,
    read_inbox,
    request,
    route,
)
from actors.cluster.placement import LeaseState, RedisPlacement, default_node_id
from actors.cluster.tail import LogTail, open_tail, parse_doorbell

__all__ = [
    "Doorbells",
    "InboxEntry",
    "InboxFull",
    "LeaseState",
    "LogTail",
    "RedisPlacement",
    "Ring",
    "RouteResult",
    "default_node_id",
    "open_tail",
    "parse_doorbell",
    "parse_ring",
    "read_inbox",
    "request",
    "route",
]
