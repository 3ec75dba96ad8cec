"""The node's idle polls, batched: one Redis call per interval for every Stream a reader here waits on.

Owns: ``IdlePolls``. Doorbells (pub/sub) only wake readers early; a lost one (Redis restart, full queue)
must still be noticed within one interval. Instead of each log tail and each inbox reading its own Stream
every interval (1,000 idle tailed sessions: 1,000+ calls a second), the node asks once: a non-blocking
``XREAD COUNT 1 STREAMS k1 .. kN id1 .. idN`` over every watched Stream after the position its reader has
reached (at most ``keys_per_call`` keys per call; CLUSTER.md: XREAD costs O(keys) in Redis, so 1000), and
wakes only the readers whose Stream has something beyond it. The reader then reads from its own position
as usual (its own checks drop what it has already seen), so waking it too often costs a read, never a
duplicate, and a wake-up it misses is repeated at the next interval: no gap.

Readers: ``watch(key, position, wake)`` (a context manager, one per log tail) and ``add_source(items)``
(a callable listing ``(key, position, wake)`` each interval, for the inbox reader's many sessions).
Knows nothing of what the Streams hold. Multi-key reads need one Cluster slot per call: grouping keys by
slot is left for Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import structlog
import trio

from actors.stores.base import StoreError
from actors.stores.redis import RedisStore

__all__ = ["IdlePolls", "Watched", "stream_position"]

log = structlog.get_logger(__name__)

Watched = tuple[str, str, Callable[[], None]]
"""``(stream key, position, wake)``: wake the reader if the Stream has an entry with id > position."""


def stream_position(event_id: int) -> str:
    """The Stream position after event ``event_id`` of a log (entry ids are ``<event id>-1``)."""
    return f"{event_id}-1" if event_id >= 0 else "0-0"


def _key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class IdlePolls:
    def __init__(self, store: RedisStore, *, interval: float = 0.5, keys_per_call: int = 1000) -> None:
        self.store = store
        self.interval = interval
        self.keys_per_call = keys_per_call
        self.calls = 0  # XREADs sent (the metric ``supervisor_cluster_idle_poll_calls_total``)
        self.woken = 0  # readers woken because their Stream had moved without a doorbell reaching them
        self._watches: dict[int, tuple[str, Callable[[], str], Callable[[], None]]] = {}
        self._sources: list[Callable[[], Iterable[Watched]]] = []
        self._next = 0

    @contextmanager
    def watch(self, key: str, position: Callable[[], str], wake: Callable[[], None]) -> Iterator[None]:
        """While inside: each interval, ``wake()`` if Stream ``key`` has an entry after ``position()``."""
        token = self._next
        self._next += 1
        self._watches[token] = (key, position, wake)
        try:
            yield
        finally:
            del self._watches[token]

    def add_source(self, items: Callable[[], Iterable[Watched]]) -> None:
        """``items()`` is called each interval; it lists Streams to check (and may wake readers itself)."""
        self._sources.append(items)

    @property
    def watched(self) -> int:
        return len(self._watches)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.interval)
            await self.poll_once()

    def _wanted(self) -> dict[str, tuple[str, list[Callable[[], None]]]]:
        """Stream key -> (the lowest position any of its readers has, their wake-ups)."""
        wanted: dict[str, tuple[str, list[Callable[[], None]]]] = {}

        def items() -> Iterator[Watched]:
            for key, position, wake in self._watches.values():
                yield key, position(), wake
            for source in self._sources:
                yield from source()

        for key, position, wake in items():
            found = wanted.get(key)
            if found is None:
                wanted[key] = (position, [wake])
            else:
                lowest = position if _key(position) < _key(found[0]) else found[0]
                found[1].append(wake)
                wanted[key] = (lowest, found[1])
        return wanted

    async def poll_once(self) -> None:
        """Check every watched Stream (one call per ``keys_per_call``) and wake the readers behind."""
        wanted = self._wanted()
        if not wanted:
            return
        keys = list(wanted)
        for start in range(0, len(keys), self.keys_per_call):
            streams = {key: wanted[key][0] for key in keys[start : start + self.keys_per_call]}
            self.calls += 1
            try:
                client = self.store.client  # raises StoreError once the store is closed
                reply: Any = await self.store.call(
                    "poll idle streams", partial(client.xread, streams, count=1)
                )
            except StoreError as exc:
                log.warning("cluster.idle_poll_failed", streams=len(streams), error=str(exc))
                return  # the next interval tries again
            for raw in reply or {}:
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                found = wanted.get(key)
                if found is None:
                    continue
                for wake in found[1]:
                    self.woken += 1
                    wake()
