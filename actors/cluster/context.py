"""What the cluster's per-node services share: one object instead of the same collaborators passed to each.

Owns: ``ClusterContext`` (the node's store, placement, doorbells, batched idle polls, routed actions'
answers and the supervisor it serves) and ``Host`` (what those services need of the supervisor). Built
once by ``actors.cluster.node.ClusterNode``; ``InboxReader``, ``RemoteSessions`` and ``UserCaps`` read it.
Knows nothing of what any of them does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from actors.cluster.answers import Answers
from actors.cluster.doorbells import Doorbells
from actors.cluster.placement import RedisPlacement
from actors.cluster.polling import IdlePolls
from actors.fanout import FanOut
from actors.messages import Message
from actors.stores.redis import RedisStore

if TYPE_CHECKING:
    from actors.introspection import SessionInfo

__all__ = ["ClusterContext", "Host"]


class Host(Protocol):
    """The node's supervisor, as the cluster services use it."""

    fanout: FanOut

    async def deliver(self, session_id: str, msg: Message, *, user_id: str | None = None,
                      create: bool = True, live_only: bool = False) -> None: ...

    async def ensure(
        self, session_id: str, *, user_id: str | None = None, create: bool = True
    ) -> SessionInfo: ...


@dataclass(frozen=True, slots=True)
class ClusterContext:
    store: RedisStore
    placement: RedisPlacement
    doorbells: Doorbells
    polls: IdlePolls
    answers: Answers
    host: Host
