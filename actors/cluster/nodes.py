"""The cluster's node registry: which nodes are alive, and how many sessions each holds.

Owns: ``NodeRegistry``. Each node writes ``node:{nid}:alive`` (JSON: sessions held, started_at) with a PX
TTL every ``interval`` seconds and keeps its id in the sorted set ``nodes`` (score: last heartbeat, unix
ms); a node that stops heartbeating disappears when its key expires, and readers drop such ids from the
set. A graceful stop deletes the key at once. The heartbeat also measures Redis's round trip (a metric).
Knows nothing of sessions beyond a count; never used for correctness (leases and fences are).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import structlog
import trio

from actors.stores.base import StoreError
from actors.stores.redis import RedisStore

__all__ = ["NODE_INDEX", "NodeRegistry"]

log = structlog.get_logger(__name__)

NODE_INDEX = "nodes"


def _alive_key(node_id: str) -> str:
    return f"node:{{{node_id}}}:alive"


class NodeRegistry:
    def __init__(
        self, store: RedisStore, node_id: str, sessions: Callable[[], int], *, ttl: float, interval: float
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.sessions = sessions
        self.ttl = ttl
        self.interval = interval
        self.started_at = time.time()
        self.redis_latency: float | None = None  # seconds of the last heartbeat's PING

    async def beat(self) -> None:
        client = self.store.client
        value = json.dumps({"sessions": self.sessions(), "started_at": self.started_at})
        ttl_ms = max(1, int(self.ttl * 1000))
        self.redis_latency = await self.store.ping()
        await self.store.call("heartbeat", lambda: client.set(_alive_key(self.node_id), value, px=ttl_ms))
        await self.store.call(
            "heartbeat", lambda: client.zadd(NODE_INDEX, {self.node_id: int(time.time() * 1000)})
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self.beat()
        except StoreError as exc:
            log.warning("cluster.heartbeat_failed", error=str(exc))
        task_status.started()
        try:
            while True:
                await trio.sleep(self.interval)
                try:
                    await self.beat()
                except StoreError as exc:
                    log.warning("cluster.heartbeat_failed", error=str(exc))
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                try:
                    client = self.store.client
                    await self.store.call("leave", lambda: client.delete([_alive_key(self.node_id)]))
                    await self.store.call("leave", lambda: client.zrem(NODE_INDEX, [self.node_id]))
                except StoreError:
                    pass

    async def live_nodes(self) -> list[dict[str, Any]]:
        """Every node with a live heartbeat: ``{"node_id", "sessions", "started_at"}``, by node id."""
        client = self.store.client
        raw: Any = await self.store.call("list nodes", lambda: client.zrange(NODE_INDEX, 0, -1))
        nodes = []
        gone = []
        for item in raw:
            node_id = item.decode()
            key = _alive_key(node_id)
            value: Any = await self.store.call("node", lambda: client.get(key))  # noqa: B023
            if value is None:
                gone.append(node_id)
                continue
            data = json.loads(value)
            nodes.append({"node_id": node_id, "sessions": int(data.get("sessions", 0)),
                          "started_at": data.get("started_at")})
        if gone:
            await self.store.call("forget nodes", lambda: client.zrem(NODE_INDEX, gone))
        return sorted(nodes, key=lambda n: n["node_id"])
