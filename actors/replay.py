"""The connections of one session: their cursors, live fan-out and catch-up replay.

Owns: ``ConnEntry`` and ``ConnectionSet``. Each connection has a cursor (the last event id it was sent). A
*live* connection gets every new event from ``fan_out``; a *catching-up* one is fed by its ``pump`` (pages
read from the store, flow-controlled by ``wait_writable``) and is flipped to live, with no await between the
check and the flip, once its cursor reaches the head. Every send is guarded by the cursor (only id ==
cursor + 1 goes out), so there is no gap and no duplicate whatever interleaves. A connection whose bounded
outbound buffer refuses an event, or that falls more than ``lag_limit`` events behind the live head while
catching up, is closed (its client reconnects with its last id). Never awaits on a connection except the
pump's ``wait_writable``. Knows nothing of actor states, agents or transports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import structlog
import trio

from actors.connection import Connection
from actors.events import OutboundEvent, StoredEvent
from actors.stores.base import Store

log = structlog.get_logger(__name__)

READY = "STATUS$READY"


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


class ConnectionSet:
    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, ConnEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ConnEntry]:
        return iter(list(self._entries.values()))

    def ids(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def replaying(self) -> tuple[str, ...]:
        return tuple(cid for cid, e in self._entries.items() if not e.live)

    def get(self, conn_id: str) -> ConnEntry | None:
        return self._entries.get(conn_id)

    def add(self, conn: Connection, latest_event_id: int, head: int) -> ConnEntry:
        """Attach ``conn`` (replacing an entry with the same id). Live at once if it has seen the head."""
        self.remove(conn.id)
        if latest_event_id > head:
            log.debug("join.cursor_ahead", conn_id=conn.id, latest_event_id=latest_event_id, head=head)
        cursor = min(max(latest_event_id, -1), head)
        entry = ConnEntry(conn, cursor, head)
        entry.live = cursor >= head
        self._entries[conn.id] = entry
        return entry

    def remove(self, conn_id: str) -> ConnEntry | None:
        entry = self._entries.pop(conn_id, None)
        if entry is not None and entry.scope is not None:
            entry.scope.cancel()
            entry.scope = None
        return entry

    def drop(self, entry: ConnEntry, reason: str) -> None:
        """Remove and close one connection (slow, lagging, or a replay that cannot continue)."""
        if self._entries.get(entry.conn.id) is entry:
            self.remove(entry.conn.id)
        log.info("connection.dropped", conn_id=entry.conn.id, reason=reason, cursor=entry.cursor)
        entry.conn.close(reason)

    def demote_all(self) -> None:
        """After a crash: nobody is live until the next incarnation has checked its head."""
        for entry in self._entries.values():
            entry.live = False
            entry.scope = None

    def fan_out(self, events: list[StoredEvent], lag_limit: int | None = None) -> None:
        """Send new events (ids ascending, contiguous) to every live connection; one OutboundEvent per event,
        shared by all recipients so the transport encodes it once. A connection still replaying that is now
        more than ``lag_limit`` events behind the head is dropped here: its pump may be parked in
        ``wait_writable`` on a client that stopped reading, and would never look again."""
        if not self._entries or not events:
            return
        outs = [OutboundEvent.from_stored(ev) for ev in events]
        head = events[-1].id
        for entry in list(self._entries.values()):
            if not entry.live:
                if lag_limit is not None and head - max(entry.cursor, entry.join_head) > lag_limit:
                    self.drop(entry, "lagging")
                continue
            send = entry.conn.send
            for ev, out in zip(events, outs, strict=True):
                eid = ev.id
                if eid <= entry.cursor:
                    continue
                if eid != entry.cursor + 1:
                    self.drop(entry, "internal gap")
                    break
                if not send(out):
                    self.drop(entry, "slow consumer")
                    break
                entry.cursor = eid

    def broadcast(self, event: OutboundEvent, *, live_only: bool = True) -> None:
        """A status update (not stored) to every (live) connection."""
        for entry in list(self._entries.values()):
            if (entry.live or not live_only) and not entry.conn.send(event):
                self.drop(entry, "slow consumer")

    def close_all(self, status: OutboundEvent | None, reason: str) -> None:
        for entry in list(self._entries.values()):
            self.remove(entry.conn.id)
            if status is not None:
                entry.conn.send(status)
            entry.conn.close(reason)

    async def pump(
        self,
        entry: ConnEntry,
        *,
        store: Store,
        session_id: str,
        head: Callable[[], int],
        page_size: int,
        lag_limit: int | None,
        done: Callable[[], None],
    ) -> None:
        """Feed a catching-up connection from the store until it reaches the head, then make it live."""
        conn = entry.conn
        with trio.CancelScope() as scope:
            entry.scope = scope
            try:
                while True:
                    if self._entries.get(conn.id) is not entry:
                        return
                    if entry.cursor >= head():
                        await conn.wait_writable()  # room for what follows: READY and live events
                        if self._entries.get(conn.id) is not entry:
                            return
                    h = head()
                    if entry.cursor >= h:  # no await between this check and the flip to live
                        entry.live = True
                        entry.scope = None
                        if not conn.send(ready_status()):
                            self.drop(entry, "slow consumer")
                        return
                    if lag_limit is not None and h - max(entry.cursor, entry.join_head) > lag_limit:
                        self.drop(entry, "lagging")
                        return
                    try:
                        page = await store.events_after(session_id, entry.cursor, page_size)
                    except Exception:
                        log.exception("replay.store_failed", conn_id=conn.id)
                        self.drop(entry, "replay failed")
                        return
                    if self._entries.get(conn.id) is not entry:
                        return
                    if not page:
                        log.error("replay.store_behind_head", conn_id=conn.id, cursor=entry.cursor, head=h)
                        self.drop(entry, "replay failed")
                        return
                    for ev in page:
                        if ev.id <= entry.cursor:
                            continue
                        if ev.id != entry.cursor + 1:
                            self.drop(entry, "internal gap")
                            return
                        await conn.wait_writable()  # flow control per event: replay is not the hot path
                        if self._entries.get(conn.id) is not entry:
                            return
                        if not conn.send(OutboundEvent.from_stored(ev)):
                            self.drop(entry, "slow consumer")
                            return
                        entry.cursor = ev.id
            finally:
                if entry.scope is scope:
                    entry.scope = None
                done()
