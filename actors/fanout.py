"""The node's fan-out: every local connection's cursor, catch-up replay from the store, live delivery.

Owns: ``FanOut`` (one per node) and ``ConnEntry``. Whoever learns of new durable events publishes them here:
the local actor right after its (fenced) append, or, in cluster mode, a tail of the shared log. Each
connection has a cursor (the last event id it was sent). A *live* connection gets every published event; a
*catching-up* one is fed by its pump (pages read from the store, flow-controlled by ``wait_writable``) and
is flipped to live, with no await between the check and the flip, once its cursor reaches the head. Every
send is guarded by the cursor (only id == cursor + 1 goes out), so there is no gap and no duplicate whatever
interleaves; a live connection that sees a gap (a publisher behind the log) goes back to catching up.

A connection whose bounded outbound buffer refuses an event, or that falls more than ``lag_limit`` events
behind the head while catching up, is closed (its client reconnects with its last id) and reported through
``on_detached``. The head of a session is known from the attach (``head=``, the actor's) or from
publishes; with neither (a session with no live actor on this node) the pump reads it from the store, so a
node can serve a session's connections from the log alone.

Never awaits on a connection except a pump's ``wait_writable``; pumps live in the fan-out's own nursery
(``run``). Knows nothing of actors, their states, agents or transports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import structlog
import trio

from actors.connection import Connection
from actors.events import OutboundEvent, StoredEvent
from actors.stores.base import Store

log = structlog.get_logger(__name__)

READY = "STATUS$READY"
_UNKNOWN = -2  # a session head nobody told us yet (-1 is "the log is empty")

DetachHook = Callable[[str, str], None]
"""``on_detached(session_id, conn_id)``: the fan-out closed a connection by itself (slow, lagging, replay
failed). Not called for ``detach`` or ``close_all``, whose caller knows."""


def ready_status() -> OutboundEvent:
    return OutboundEvent.status(READY, "ready")


class ConnEntry:
    __slots__ = ("conn", "cursor", "join_head", "live", "scope")

    def __init__(self, conn: Connection, cursor: int, join_head: int) -> None:
        self.conn = conn
        self.cursor = cursor
        self.join_head = join_head
        self.live = False
        self.scope: trio.CancelScope | None = None


class _Topic:
    """One session's local connections and the highest event id known durable."""

    __slots__ = ("entries", "head")

    def __init__(self) -> None:
        self.entries: dict[str, ConnEntry] = {}
        self.head = _UNKNOWN


class FanOut:
    __slots__ = ("_lag_limit", "_nursery", "_on_detached", "_page_size", "_store", "_topics")

    def __init__(
        self,
        store: Store,
        *,
        page_size: int = 200,
        lag_limit: int | None = 10_000,
        on_detached: DetachHook | None = None,
    ) -> None:
        self._store = store
        self._page_size = page_size
        self._lag_limit = lag_limit
        self._on_detached = on_detached
        self._topics: dict[str, _Topic] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Own the replay pumps until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def set_detach_hook(self, hook: DetachHook | None) -> None:
        self._on_detached = hook

    # ---- reading -------------------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return sum(len(t.entries) for t in self._topics.values())

    def connection_ids(self, session_id: str) -> tuple[str, ...]:
        topic = self._topics.get(session_id)
        return () if topic is None else tuple(topic.entries)

    def replaying(self, session_id: str) -> tuple[str, ...]:
        topic = self._topics.get(session_id)
        return () if topic is None else tuple(cid for cid, e in topic.entries.items() if not e.live)

    # ---- attaching -----------------------------------------------------------------------------------

    def attach(self, session_id: str, conn: Connection, after_id: int, *, head: int | None = None) -> None:
        """Serve ``conn`` every event of ``session_id`` with id > after_id, then live ones (replacing an
        entry with the same connection id). ``head``: the last durable id if the caller knows it (then a
        connection that has seen it is live at once, READY sent before this returns)."""
        topic = self._topics.get(session_id)
        if topic is None:
            topic = self._topics[session_id] = _Topic()
        else:
            self._remove(session_id, topic, conn.id)
            if session_id not in self._topics:
                self._topics[session_id] = topic
        if head is not None and head > topic.head:
            topic.head = head
        known = topic.head
        if known == _UNKNOWN:
            cursor = max(after_id, -1)
            entry = ConnEntry(conn, cursor, cursor)  # the pump clamps it once it read the head
        else:
            if after_id > known:
                log.debug("join.cursor_ahead", conn_id=conn.id, latest_event_id=after_id, head=known)
            cursor = min(max(after_id, -1), known)
            entry = ConnEntry(conn, cursor, known)
        topic.entries[conn.id] = entry
        if known != _UNKNOWN and cursor >= known:
            entry.live = True
            if not conn.send(ready_status()):
                self._drop(session_id, topic, entry, _send_failure(entry.conn))
            return
        self._start_pump(session_id, topic, entry)

    def detach(self, session_id: str, conn_id: str) -> bool:
        """Forget the connection (its pump, if any, stops). False if it was not attached."""
        topic = self._topics.get(session_id)
        return topic is not None and self._remove(session_id, topic, conn_id) is not None

    def resync(self, session_id: str, head: int) -> None:
        """The log's head is ``head`` (an actor reloaded it after a crash): every live connection behind it
        catches up from the store."""
        topic = self._topics.get(session_id)
        if topic is None:
            return
        if head > topic.head:
            topic.head = head
        for entry in list(topic.entries.values()):
            if entry.live and entry.cursor < topic.head:
                entry.live = False
                self._start_pump(session_id, topic, entry)

    # ---- delivering ----------------------------------------------------------------------------------

    def publish(self, session_id: str, events: list[StoredEvent]) -> None:
        """New durable events (ids ascending, contiguous) to every live connection of the session; one
        OutboundEvent per event, shared by all recipients so the transport encodes it once. A connection
        still replaying that is now more than ``lag_limit`` events behind the head is dropped here: its pump
        may be parked in ``wait_writable`` on a client that stopped reading, and would never look again."""
        topic = self._topics.get(session_id)
        if topic is None or not events:
            return
        head = events[-1].id
        if head > topic.head:
            topic.head = head
        outs = [OutboundEvent.from_stored(ev) for ev in events]
        lag_limit = self._lag_limit
        for entry in list(topic.entries.values()):
            if not entry.live:
                if lag_limit is not None and head - max(entry.cursor, entry.join_head) > lag_limit:
                    self._drop(session_id, topic, entry, "lagging")
                continue
            send = entry.conn.send
            for ev, out in zip(events, outs, strict=True):
                eid = ev.id
                if eid <= entry.cursor:
                    continue
                if eid != entry.cursor + 1:
                    log.warning("fanout.gap", conn_id=entry.conn.id, cursor=entry.cursor, event_id=eid)
                    entry.live = False
                    self._start_pump(session_id, topic, entry)
                    break
                if not send(out):
                    self._drop(session_id, topic, entry, _send_failure(entry.conn))
                    break
                entry.cursor = eid

    def broadcast(self, session_id: str, event: OutboundEvent, *, live_only: bool = True) -> None:
        """A status update (not stored) to every (live) connection of the session."""
        topic = self._topics.get(session_id)
        if topic is None:
            return
        for entry in list(topic.entries.values()):
            if (entry.live or not live_only) and not entry.conn.send(event):
                self._drop(session_id, topic, entry, _send_failure(entry.conn))

    def close(
        self, session_id: str, conn_ids: Iterable[str], status: OutboundEvent | None, reason: str
    ) -> None:
        """Detach and close these connections of the session, each sent ``status`` first."""
        topic = self._topics.get(session_id)
        for conn_id in conn_ids:
            entry = self._remove(session_id, topic, conn_id) if topic is not None else None
            if entry is not None:
                if status is not None:
                    entry.conn.send(status)
                entry.conn.close(reason)

    def close_all(self, session_id: str, status: OutboundEvent | None, reason: str) -> None:
        """Detach and close every connection of the session, each sent ``status`` first."""
        topic = self._topics.get(session_id)
        if topic is not None:
            self.close(session_id, list(topic.entries), status, reason)

    # ---- internals -----------------------------------------------------------------------------------

    def _remove(self, session_id: str, topic: _Topic, conn_id: str) -> ConnEntry | None:
        entry = topic.entries.pop(conn_id, None)
        if entry is not None and entry.scope is not None:
            entry.scope.cancel()
            entry.scope = None
        if not topic.entries and self._topics.get(session_id) is topic:
            del self._topics[session_id]
        return entry

    def _drop(self, session_id: str, topic: _Topic, entry: ConnEntry, reason: str) -> None:
        """Remove and close one connection (slow, lagging, or a replay that cannot continue)."""
        conn_id = entry.conn.id
        ours = topic.entries.get(conn_id) is entry
        if ours:
            self._remove(session_id, topic, conn_id)
        # A send to a client that just went away is routine (debug); a real cut-off is worth an info line.
        (log.debug if reason == "disconnected" else log.info)(
            "connection.dropped", conn_id=conn_id, reason=reason, cursor=entry.cursor
        )
        entry.conn.close(reason)
        if ours and self._on_detached is not None:
            self._on_detached(session_id, conn_id)

    def _start_pump(self, session_id: str, topic: _Topic, entry: ConnEntry) -> None:
        if self._nursery is None:
            raise RuntimeError("the fan-out is not running")
        self._nursery.start_soon(self._pump, session_id, topic, entry)

    async def _pump(self, session_id: str, topic: _Topic, entry: ConnEntry) -> None:
        """Feed a catching-up connection from the store until it reaches the head, then make it live."""
        conn = entry.conn
        entries = topic.entries
        store = self._store
        with trio.CancelScope() as scope:
            entry.scope = scope
            try:
                if topic.head == _UNKNOWN and not await self._learn_head(session_id, topic, entry):
                    return
                while True:
                    if entries.get(conn.id) is not entry:
                        return
                    if entry.cursor >= topic.head:
                        await conn.wait_writable()  # room for what follows: READY and live events
                        if entries.get(conn.id) is not entry:
                            return
                    h = topic.head
                    if entry.cursor >= h:  # no await between this check and the flip to live
                        entry.live = True
                        entry.scope = None
                        if not conn.send(ready_status()):
                            self._drop(session_id, topic, entry, _send_failure(entry.conn))
                        return
                    lag_limit = self._lag_limit
                    if lag_limit is not None and h - max(entry.cursor, entry.join_head) > lag_limit:
                        self._drop(session_id, topic, entry, "lagging")
                        return
                    try:
                        page = await store.events_after(session_id, entry.cursor, self._page_size)
                    except Exception:
                        log.exception("replay.store_failed", conn_id=conn.id)
                        self._drop(session_id, topic, entry, "replay failed")
                        return
                    if entries.get(conn.id) is not entry:
                        return
                    if not page:
                        log.error("replay.store_behind_head", conn_id=conn.id, cursor=entry.cursor, head=h)
                        self._drop(session_id, topic, entry, "replay failed")
                        return
                    for ev in page:
                        if ev.id <= entry.cursor:
                            continue
                        if ev.id != entry.cursor + 1:
                            self._drop(session_id, topic, entry, "internal gap")
                            return
                        await conn.wait_writable()  # flow control per event: replay is not the hot path
                        if entries.get(conn.id) is not entry:
                            return
                        if not conn.send(OutboundEvent.from_stored(ev)):
                            self._drop(session_id, topic, entry, _send_failure(entry.conn))
                            return
                        entry.cursor = ev.id
            finally:
                if entry.scope is scope:
                    entry.scope = None

    async def _learn_head(self, session_id: str, topic: _Topic, entry: ConnEntry) -> bool:
        """No actor told us the head: read it from the store and clamp the cursor to it."""
        try:
            record = await self._store.load(session_id)
        except Exception:
            log.exception("replay.store_failed", conn_id=entry.conn.id)
            self._drop(session_id, topic, entry, "replay failed")
            return False
        if topic.entries.get(entry.conn.id) is not entry:
            return False
        last = -1 if record is None else record.last_event_id
        if last > topic.head:
            topic.head = last
        entry.cursor = min(entry.cursor, last)
        entry.join_head = last
        return True


def _send_failure(conn: Connection) -> str:
    """Why ``conn.send`` returned False: the client is already gone, or it is too slow to keep up.
    A connection may say it is gone with a ``disconnected`` property (``Connection`` does not require it)."""
    return "disconnected" if getattr(conn, "disconnected", False) else "slow consumer"
