"""Routing actions to a session's owner: the per-session inbox Stream and the owner node's doorbell.

Owns: ``route``, ``request``, ``read_inbox``, ``RouteResult``, ``InboxEntry``, ``InboxFull``, ``Ring``,
``parse_ring`` and ``inbox_order``. The inbox is durable: an action routed while no node owns the session (or
while its owner is dying) waits in the Stream for whoever acquires the lease next, which resumes after
``RedisStore.inbox_position`` (the last action the log answers; appended atomically with the events, so
processing is exactly-once across failover). Knows nothing of actors or acks (the sending node matches the
answering event's inbox id).

The same transport carries requests to the owner node itself (``request``: field ``c`` instead of ``a``, e.g.
"passivate this session, under lease fence N"): no event answers them, so a new owner may read them again
after a failover; they name the lease they are meant for, and any other lease ignores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.stores._redis_keys import SessionKeys, node_ring
from actors.stores.base import StoreError
from actors.stores.redis import RedisStore

__all__ = [
    "InboxEntry", "InboxFull", "Ring", "RouteResult", "inbox_order", "parse_ring", "read_inbox", "request",
    "route",
]

MAX_INBOX = 10_000  # routed actions waiting per session; beyond it ``route`` refuses (bounded queue)


class InboxFull(StoreError):
    """The session's inbox holds ``MAX_INBOX`` unanswered actions: refuse, do not drop."""


@dataclass(frozen=True, slots=True)
class RouteResult:
    inbox_id: str
    owner: str | None  # node id holding the lease, None: nobody (acquire it and host the session)
    receivers: int  # 0 while an owner exists: it may be dead; poll acquire until its lease expires


@dataclass(frozen=True, slots=True)
class InboxEntry:
    inbox_id: str
    action: str  # the action's JSON text as the sender gave it ('' for a request)
    request: str | None = None  # a request to the owner node (``request``), not an action


@dataclass(frozen=True, slots=True)
class Ring:
    """A node doorbell: the routed entry itself and the inbox id it follows (``0-0``: the first)."""

    session_id: str
    entry: InboxEntry
    prev_id: str


def parse_ring(data: bytes) -> Ring:
    """``"<inbox id> <previous id> <field> <session id>\\n<text>"`` (what ``ss_route`` publishes)."""
    header, _, text = data.partition(b"\n")
    inbox_id, prev_id, field, session_id = header.decode().split(" ", 3)
    body = text.decode()
    entry = InboxEntry(inbox_id, body) if field == "a" else InboxEntry(inbox_id, "", body)
    return Ring(session_id, entry, prev_id)


def inbox_order(inbox_id: str) -> tuple[int, int]:
    """A Stream id as a sortable pair: ``"12-3"`` -> (12, 3)."""
    ms, _, seq = inbox_id.partition("-")
    return int(ms), int(seq or 0)


async def route(
    store: RedisStore, session_id: str, action: str, *, max_inbox: int = MAX_INBOX
) -> RouteResult:
    """Add ``action`` to the session's inbox and ring its owner's node, in one atomic step."""
    return await _add(store, session_id, action, "a", max_inbox)


async def request(
    store: RedisStore, session_id: str, text: str, *, max_inbox: int = MAX_INBOX
) -> RouteResult:
    """Add a request for the owner node (``InboxEntry.request``) to the inbox and ring that node."""
    return await _add(store, session_id, text, "c", max_inbox)


async def _add(store: RedisStore, session_id: str, text: str, field: str, max_inbox: int) -> RouteResult:
    keys = SessionKeys(session_id)
    prefix, _, suffix = node_ring("\x00").partition("\x00")
    try:
        reply: Any = await store.fcall(
            "route an action" if field == "a" else "route a request", "ss_route", [keys.inbox, keys.lease],
            [text, str(max_inbox), session_id, prefix, suffix, field], session_id,
        )
    except StoreError as exc:
        if "INBOXFULL" in str(exc):
            raise InboxFull(f"session {session_id!r}: {max_inbox} routed actions are waiting") from exc
        raise
    inbox_id, owner, receivers = reply
    return RouteResult(inbox_id.decode(), owner.decode() if owner else None, int(receivers))


async def read_inbox(store: RedisStore, session_id: str, after_id: str, count: int = 512) -> list[InboxEntry]:
    """Up to ``count`` routed actions with inbox id > ``after_id`` (``"0-0"`` for all), oldest first."""
    keys = SessionKeys(session_id)
    client = store.client
    reply: Any = await store.call(
        "read the inbox", lambda: client.xrange(keys.inbox, f"({after_id}", "+", count=count), session_id
    )
    return [_entry(e.identifier, e.field_values) for e in reply]


def _entry(identifier: bytes, fields: Any) -> InboxEntry:
    action = fields.get(b"a")
    if action is not None:
        return InboxEntry(identifier.decode(), action.decode())
    return InboxEntry(identifier.decode(), "", fields.get(b"c", b"").decode())
