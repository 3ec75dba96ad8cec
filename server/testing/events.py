"""Reading the session gateway's ``oh_event`` stream in tests: next event, collect until, predicates.

Owns: ``user_message`` (an ``oh_user_action`` payload), ``next_oh_event``, ``collect_oh_events`` and the
small predicates and views tests use on event payloads (``is_status``, ``event_ids``, ``statuses``...).
Knows only the trio client's ``receive`` and the wire shapes of docs/protocol.md; nothing of the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import trio

from server.client import Client

__all__ = [
    "OH_EVENT",
    "OH_USER_ACTION",
    "collect_oh_events",
    "event_ids",
    "has_event_id",
    "is_status",
    "next_oh_event",
    "statuses",
    "user_message",
]

OH_EVENT = "oh_event"
OH_USER_ACTION = "oh_user_action"

Payload = dict[str, Any]
Predicate = Callable[[Payload], bool]


def user_message(content: str, **args: Any) -> Payload:
    """The ``oh_user_action`` payload of a user chat message (what OpenHands' UI sends)."""
    return {"action": "message", "args": {"content": content, **args}}


def is_status_update(payload: Payload) -> bool:
    return payload.get("status_update") is True


def is_status(status_id: str) -> Predicate:
    """Matches the status update ``status_id`` (``"STATUS$READY"``, ``"STATUS$STOPPED"``...)."""
    return lambda payload: is_status_update(payload) and payload.get("id") == status_id


def has_event_id(event_id: int) -> Predicate:
    """Matches the log event with id ``event_id`` (status updates never match: their id is a string)."""
    return lambda payload: not is_status_update(payload) and payload.get("id") == event_id


def event_ids(payloads: Iterable[Payload]) -> list[int]:
    """The ids of the log events among ``payloads``, in order (status updates skipped)."""
    return [p["id"] for p in payloads if not is_status_update(p)]


def statuses(payloads: Iterable[Payload]) -> list[str]:
    """The ids of the status updates among ``payloads``, in order."""
    return [p["id"] for p in payloads if is_status_update(p)]


async def next_oh_event(client: Client, timeout: float = 10.0) -> Payload:  # noqa: ASYNC109
    """The next ``oh_event`` payload the client received (other event names are skipped). Raises
    ``TimeoutError`` after ``timeout`` seconds (virtual seconds under a MockClock)."""
    with trio.move_on_after(timeout):
        while True:
            event = await client.receive()
            if event.name == OH_EVENT and event.args and isinstance(event.args[0], dict):
                payload: Payload = event.args[0]
                return payload
    raise TimeoutError(f"no oh_event within {timeout} s")


async def collect_oh_events(
    client: Client,
    until: Predicate | int,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> list[Payload]:
    """Every ``oh_event`` payload received until (and including) the first one matching ``until``.

    ``until`` is a predicate on the payload, or an event id: collect until the log event with that id.
    Raises ``TimeoutError`` (with what was collected so far in its message) if no match comes within
    ``timeout`` seconds in all.
    """
    predicate = has_event_id(until) if isinstance(until, int) else until
    collected: list[Payload] = []
    with trio.move_on_after(timeout):
        while True:
            event = await client.receive()
            if event.name != OH_EVENT or not event.args or not isinstance(event.args[0], dict):
                continue
            collected.append(event.args[0])
            if predicate(event.args[0]):
                return collected
    raise TimeoutError(f"no matching oh_event within {timeout} s; collected {_summary(collected)}")


def _summary(payloads: list[Payload]) -> str:
    return repr([p.get("id") for p in payloads][-20:])
