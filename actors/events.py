"""Events as the actor runtime sees them: stored log entries and what goes out to connections.

Owns: ``StoredEvent`` (one entry of a session's durable log) and ``OutboundEvent`` (one payload for the
connections of a session, with a cache slot for its wire encoding). Knows nothing of Socket.IO: the
transport decides what ``wire`` holds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> str:
    """The canonical encoding of stored events: ``json.dumps(value, separators=(",", ":"),
    ensure_ascii=False)`` (with the encoder built once)."""
    return _encode(value)


_second = -1  # the whole second of the last timestamp, and its "YYYY-MM-DDTHH:MM:SS"
_second_text = ""


def utc_timestamp() -> str:
    """ISO 8601 timestamp as OpenHands writes it: ``datetime.now(UTC).isoformat()``'s layout
    (``2026-12-01T23:59:59.123456+00:00``, no fraction when the microseconds are 0), with the date and time
    of day formatted once per second. Only ASCII digits, ``-``, ``:``, ``.``, ``T`` and ``+``: its JSON is
    the text in quotes."""
    global _second, _second_text
    second, micro = divmod(round(time.time() * 1_000_000), 1_000_000)
    if second != _second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = second
    if micro:
        return f"{_second_text}.{micro:06d}+00:00"
    return _second_text + "+00:00"


@dataclass(slots=True, frozen=True)
class StoredEvent:
    """One entry of a session's event log. ``payload`` is the full client-facing JSON object, id included.

    ``json_text`` is the canonical JSON encoding of ``payload``: stores persist it verbatim and the transport
    may splice it into packets without encoding it again.
    """

    id: int
    payload: dict[str, Any]
    json_text: str = field(default="", compare=False)

    @classmethod
    def create(cls, event_id: int, payload: dict[str, Any], json_prefix: str | None = None) -> StoredEvent:
        """The event ``payload`` + ``id``. ``json_prefix``, if given, must be the canonical encoding of
        ``payload`` without its closing brace: the text is then completed with the id, not re-encoded."""
        body = dict(payload)
        if json_prefix is not None and "id" not in body:
            body["id"] = event_id
            sep = "," if len(body) > 1 else ""
            return cls(event_id, body, f'{json_prefix}{sep}"id":{event_id}}}')
        body["id"] = event_id
        return cls(event_id, body, _encode(body))

    @classmethod
    def from_json(cls, event_id: int, json_text: str) -> StoredEvent:
        return cls(event_id, json.loads(json_text), json_text)


@dataclass(slots=True, eq=False)
class OutboundEvent:
    """One payload fanned out to connections: a log event (``event_id`` set) or a status update (None).

    ``wire`` belongs to the transport: the first connection that encodes this event stores its encoding
    there and every other recipient reuses it, so a fan-out to N connections encodes once.
    """

    payload: dict[str, Any]
    event_id: int | None = None
    json_text: str | None = None
    wire: object | None = None

    @classmethod
    def from_stored(cls, event: StoredEvent) -> OutboundEvent:
        return cls(event.payload, event.id, event.json_text or None)

    @classmethod
    def status(cls, status_id: str, message: str, *, type_: str = "info") -> OutboundEvent:
        return cls({"status_update": True, "type": type_, "id": status_id, "message": message})
