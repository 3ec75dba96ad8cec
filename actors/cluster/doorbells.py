"""Doorbells: one pub/sub connection per node, fanned out to the tasks that wait on channels.

Owns: ``Doorbells``. A doorbell only wakes a waiter early; it is never the source of truth: messages are
lost silently while Redis restarts (CLUSTER.md drill 6) or when a waiter's bounded queue is full, so every
waiter also polls the Stream it cares about. Knows nothing of what the messages mean (the log tail and the
inbox reader parse them).

One coredis ``PubSub`` serves every channel of the node (not a connection per tailing connection), owned by
``run`` in the caller's nursery: ``await nursery.start(doorbells.run)``. ``listen(channel)`` subscribes
(waiting for Redis's confirmation, so nothing published afterwards is missed while Redis is up) and yields a
bounded receive channel; leaving it unsubscribes when the last listener of that channel leaves. ``nudge``
hands the listeners of a channel an empty message from this node itself (the batched idle polls).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
import trio
from coredis.exceptions import RedisError

from actors.stores.base import StoreError
from actors.stores.redis import RedisStore, RedisUnavailable

__all__ = ["Doorbells"]

log = structlog.get_logger(__name__)


class Doorbells:
    def __init__(self, store: RedisStore, *, queue_size: int = 1024) -> None:
        self.store = store
        self.queue_size = queue_size
        self.dropped = 0  # messages dropped because a listener's queue was full
        self._pubsub: Any = None
        self._listeners: dict[str, set[trio.MemorySendChannel[bytes]]] = defaultdict(set)
        self._ready = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the node's pub/sub connection until cancelled (coredis resubscribes after reconnects)."""
        client = self.store.client
        async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
            self._pubsub = pubsub
            self._ready.set()
            task_status.started()
            try:
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True)
                    if message is None or message.get("type") != "message":
                        continue
                    self._deliver(message["channel"], message["data"])
            finally:
                self._pubsub = None

    def _deliver(self, channel: Any, data: Any) -> None:
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        payload = data if isinstance(data, bytes) else str(data).encode()
        for send in tuple(self._listeners.get(name, ())):
            try:
                send.send_nowait(payload)
            except trio.WouldBlock:
                self.dropped += 1  # the waiter polls the Stream; a lost doorbell only delays it
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    def nudge(self, channel: str) -> None:
        """Deliver an empty message to this node's listeners of ``channel`` (no Redis call): "read your
        Stream now" (``actors.cluster.polling`` found it has moved while no doorbell came)."""
        self._deliver(channel, b"")

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[trio.MemoryReceiveChannel[bytes]]:
        """Subscribe to ``channel``: what is published after this returns is delivered (while Redis is up)."""
        if self._pubsub is None:
            raise StoreError("Doorbells.run is not running")
        send, receive = trio.open_memory_channel[bytes](self.queue_size)
        first = not self._listeners[channel]
        self._listeners[channel].add(send)
        try:
            if first:
                try:
                    with trio.fail_after(self.store.timeout):
                        await self._pubsub.subscribe(channel)
                except (trio.TooSlowError, RedisError, OSError, TimeoutError) as exc:
                    raise RedisUnavailable(f"cannot subscribe to {channel!r}: {exc!r}") from exc
            with receive:
                yield receive
        finally:
            listeners = self._listeners.get(channel)
            if listeners is not None:
                listeners.discard(send)
                if not listeners:
                    del self._listeners[channel]
                    await self._unsubscribe(channel)
            send.close()

    async def _unsubscribe(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return
        with trio.move_on_after(self.store.timeout) as scope:
            scope.shield = True
            try:
                await pubsub.unsubscribe(channel)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("doorbell unsubscribe failed", channel=channel, error=repr(exc))
