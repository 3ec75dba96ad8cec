"""Tailing a session's log from any node: catch-up replay racing live appends, no gap, no duplicate.

Owns: ``open_tail`` / ``LogTail`` and ``parse_doorbell`` (the format ``ss_append`` publishes). Knows the
store's log reads and the doorbells; knows nothing of connections or fan-out (part 2 feeds
``FanOut.publish`` from a tail).

Theory of operation. The tail subscribes to ``sess:{sid}:ev`` *first*, then replays the Stream after
``after_id`` in pages (``XRANGE``), then takes doorbells. Every batch it yields continues exactly where
the last one ended: a doorbell whose events are at or below the last id yielded is dropped (already seen
in the replay), one that starts beyond it triggers a read of the missing ids from the Stream (a lost
doorbell, a Redis restart, a full queue), and when no doorbell comes for ``poll_interval`` seconds the
tail reads the Stream anyway, so a lost last doorbell delays an event by at most that long. With the
node's ``IdlePolls`` (``polls=``) the tail does not poll by itself: the node checks every tail's Stream in
one call per interval and nudges (an empty doorbell) only the tails whose Stream has moved.

Notices on the same channel (they start with a word, doorbells with a digit): ``released`` (the owner
released its lease: the tail goes on, and ``on_released`` is called) and ``closed <fence> <status JSON>``
(the owner, under lease ``fence``, closed the session's connections with that status: the tail reads the
Stream to its end, yields what is left, then stops, with ``closed`` set to (fence, the status's payload);
its user decides whether that owner still speaks for the session).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from actors.cluster.doorbells import Doorbells
from actors.cluster.polling import IdlePolls, stream_position
from actors.events import StoredEvent
from actors.stores._redis_keys import SessionKeys
from actors.stores.redis import LogEntry, RedisStore

__all__ = ["CLOSED", "RELEASED", "LogTail", "closed_notice", "open_tail", "parse_doorbell"]

RELEASED = b"released"  # what ss_release and a releasing ss_snapshot publish
CLOSED = b"closed"


def closed_notice(fence: int, status: dict[str, Any]) -> bytes:
    """The notice that the owner under lease ``fence`` closed the session's connections, each sent
    ``status`` (a payload)."""
    return b"%s %d %s" % (CLOSED, fence, json.dumps(status, separators=(",", ":")).encode())


def parse_doorbell(data: bytes) -> list[LogEntry]:
    """``"<first> <n> <len e1> <len i1> ...\\n<e1><i1>..."`` -> the entries it announces."""
    header, _, body = data.partition(b"\n")
    words = header.split()
    first, count = int(words[0]), int(words[1])
    entries: list[LogEntry] = []
    offset = 0
    for k in range(count):
        event_len, inbox_len = int(words[2 + 2 * k]), int(words[3 + 2 * k])
        text = body[offset : offset + event_len].decode()
        offset += event_len
        inbox = body[offset : offset + inbox_len].decode()
        offset += inbox_len
        entries.append(LogEntry(StoredEvent.from_json(first + k, text), inbox or None))
    return entries


class LogTail:
    """Async iterator of ``list[LogEntry]``: every id after ``after_id`` exactly once, in order."""

    def __init__(
        self,
        store: RedisStore,
        session_id: str,
        after_id: int,
        bell: trio.MemoryReceiveChannel[bytes],
        *,
        page_size: int = 1000,
        poll_interval: float | None = 1.0,
        on_released: Callable[[], None] | None = None,
    ) -> None:
        """``poll_interval`` None: never read the Stream unless a doorbell (or a nudge) comes."""
        self.store = store
        self.session_id = session_id
        self.last_id = after_id
        self.page_size = page_size
        self.poll_interval = poll_interval
        self._bell = bell
        self._catching_up = True  # replaying the Stream until a short page
        self.filled = 0  # events read from the Stream because a doorbell did not bring them
        self.on_released = on_released
        self.closed: tuple[int, dict[str, Any]] | None = None  # (fence, status) of the owner's close

    def __aiter__(self) -> LogTail:
        return self

    async def __anext__(self) -> list[LogEntry]:
        while True:
            if self._catching_up:
                page = await self._read()
                if len(page) < self.page_size:
                    self._catching_up = False
                if page:
                    return page
                continue
            if self.closed is not None:
                raise StopAsyncIteration
            data = None
            if self.poll_interval is None:
                data = await self._bell.receive()
            else:
                with trio.move_on_after(self.poll_interval):
                    data = await self._bell.receive()
            if not data:  # nothing rang, or a nudge: read the Stream (covers a lost last doorbell)
                page = await self._read()
                if len(page) >= self.page_size:
                    self._catching_up = True
                if page:
                    self.filled += len(page)
                    return page
                continue
            if not data[:1].isdigit():
                self._notice(data)
                continue
            entries = [e for e in parse_doorbell(data) if e.event.id > self.last_id]
            if not entries:
                continue  # already yielded (by the replay or an earlier read)
            if entries[0].event.id != self.last_id + 1:
                self._catching_up = True  # a gap: read it from the Stream, the doorbell's events included
                continue
            self.last_id = entries[-1].event.id
            return entries

    def _notice(self, data: bytes) -> None:
        word, _, rest = data.partition(b" ")
        if word == CLOSED:
            fence, _, text = rest.partition(b" ")
            try:
                status = json.loads(text)
                self.closed = (int(fence), status if isinstance(status, dict) else {})
            except ValueError:
                return  # not a notice this version wrote
            self._catching_up = True  # what was appended before the close, then stop
        elif word == RELEASED and self.on_released is not None:
            self.on_released()

    async def _read(self) -> list[LogEntry]:
        page = await self.store.entries_after(self.session_id, self.last_id, self.page_size)
        if page:
            self.last_id = page[-1].event.id
        return page


@asynccontextmanager
async def open_tail(
    store: RedisStore,
    doorbells: Doorbells,
    session_id: str,
    after_id: int,
    *,
    page_size: int = 1000,
    poll_interval: float = 1.0,
    polls: IdlePolls | None = None,
    on_released: Callable[[], None] | None = None,
) -> AsyncIterator[LogTail]:
    """Subscribe to the session's doorbell, then iterate: replay after ``after_id``, then live. With
    ``polls`` the node's batched idle polls replace the tail's own ``poll_interval``."""
    keys = SessionKeys(session_id)
    async with doorbells.listen(keys.channel) as bell:
        tail = LogTail(store, session_id, after_id, bell, page_size=page_size,
                       poll_interval=None if polls is not None else poll_interval, on_released=on_released)
        if polls is None:
            yield tail
            return
        with polls.watch(
            keys.log, lambda: stream_position(tail.last_id), lambda: doorbells.nudge(keys.channel)
        ):
            yield tail
