"""What the operator API shows of cluster mode, as a protocol (implemented by ``actors.cluster.node``).

Owns: ``ClusterView``. ``/admin/status`` adds ``status_fields()`` (``node_id``, ``nodes``), each session
view adds ``session_fields(id)`` (``owner_node``: the node holding the lease or null; ``fence``). Knows
nothing of Redis.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ClusterView"]


class ClusterView(Protocol):
    async def status_fields(self) -> dict[str, Any]: ...

    async def session_fields(self, session_id: str) -> dict[str, Any]: ...
