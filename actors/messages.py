"""The messages a session actor accepts, and the values it answers with.

Owns: ``Join``, ``Leave``, ``Act``, ``Passivate``, ``Inspect``, ``Stop`` (frozen, slotted dataclasses),
``ActResult`` and ``ActorInfo``. Knows nothing of transports: a connection is an ``actors.connection``
handle, an action is the client's JSON object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.connection import Connection
from actors.reply import Reply


@dataclass(frozen=True, slots=True)
class ActResult:
    """The ack of an Act: the id the action got in the session's log."""

    event_id: int
    duplicate: bool = False  # True when client_seq had been applied before (event_id is the original one)


@dataclass(frozen=True, slots=True)
class ActorInfo:
    """What ``Inspect`` answers: a consistent snapshot taken inside the actor."""

    session_id: str
    state: str
    connections: tuple[str, ...]
    replaying: tuple[str, ...]
    mailbox_depth: int
    last_event_id: int
    turn_running: bool
    agent_backlog: int
    restarts: int


@dataclass(frozen=True, slots=True)
class Join:
    """Attach ``conn``; it receives every event with id > latest_event_id, then live events."""

    conn: Connection
    latest_event_id: int = -1


@dataclass(frozen=True, slots=True)
class Leave:
    conn_id: str
    reason: str = "disconnect"


@dataclass(frozen=True, slots=True)
class Act:
    """A user action. ``client_seq`` makes it idempotent within the session.

    ``action_json``, when the sender has it already, is ``action`` encoded as the stores' canonical JSON
    (``separators=(",", ":")``, ``ensure_ascii=False``): the stored event's text is then completed from it
    instead of encoding the action a second time.
    """

    conn_id: str | None
    action: dict[str, Any]
    reply: Reply[ActResult] | None = None
    client_seq: int | str | None = None
    action_json: str | None = None
    inbox_id: str | None = None
    """Cluster mode: the id of the routed action in the session's inbox (stored with its event)."""
    inbox_fence: int | None = None
    """Cluster mode: the lease under which it was read from the inbox; any other incarnation drops it
    (the session's owner reads it again from the inbox position the log records: exactly once)."""


@dataclass(frozen=True, slots=True)
class Passivate:
    """Persist and end the session.

    ``hard=False`` (the idle clock, capacity eviction) applies only to an IDLE actor and is aborted by any
    message that arrives meanwhile. ``hard=True`` (operator, shutdown, per-user cap) closes the connections
    with ``status`` (a status id such as ``STATUS$STOPPED``), lets a running turn finish (watchdog-bounded),
    then persists; messages that arrive meanwhile go to the next incarnation.
    """

    reason: str
    hard: bool = False
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Inspect:
    reply: Reply[ActorInfo]


@dataclass(frozen=True, slots=True)
class Stop:
    """End the incarnation without a snapshot (the next one rehydrates from the log)."""

    reason: str = "stop"


Message = Join | Leave | Act | Passivate | Inspect | Stop
