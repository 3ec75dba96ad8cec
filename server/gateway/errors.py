"""The gateway's wire errors: refusal messages and the ``msg_id`` codes clients switch on.

Owns: ``Refusal`` (one documented CONNECT_ERROR or ack error) and the table mapping actor errors to them.
Knows nothing of Socket.IO objects: the gateway turns a ``Refusal`` into ``ConnectionRefusedError`` or an ack.
docs/protocol.md lists every code; change both together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors import errors as actor_errors


@dataclass(frozen=True, slots=True)
class Refusal:
    msg_id: str
    message: str

    def connect_error_data(self) -> dict[str, Any]:
        return {"msg_id": self.msg_id}

    def ack(self) -> dict[str, Any]:
        return {"error": self.message, "msg_id": self.msg_id}


MISSING_CONVERSATION_ID = Refusal("CONNECT$MISSING_CONVERSATION_ID", "No conversation_id in request")
INVALID_CONVERSATION_ID = Refusal("CONNECT$INVALID_CONVERSATION_ID", "Invalid conversation_id")
INVALID_CREDENTIALS = Refusal("CONNECT$INVALID_CREDENTIALS", "Invalid or missing credentials")
FORBIDDEN = Refusal("CONNECT$FORBIDDEN", "This conversation belongs to another user")
SESSION_FAILED = Refusal("STATUS$ERROR_SESSION_FAILED", "This conversation failed and cannot be resumed")
TOO_MANY_CONVERSATIONS = Refusal("AGENT_ERROR$TOO_MANY_CONVERSATIONS", "Too many conversations are running")
BUSY = Refusal("STATUS$ERROR_BUSY", "The conversation is busy; retry shortly")
SHUTTING_DOWN = Refusal("STATUS$ERROR_SHUTTING_DOWN", "The server is shutting down; retry shortly")

ACTION_INVALID = Refusal("ACTION$INVALID", "oh_user_action takes one JSON object with a string 'action'")
ACTION_TOO_LARGE = Refusal("ACTION$TOO_LARGE", "oh_user_action payload is too large")
ACTION_NOT_JOINED = Refusal("ACTION$NOT_JOINED", "This connection has not joined a conversation")
ACTION_AGENT_BUSY = Refusal("ACTION$AGENT_BUSY", "The agent has too many actions waiting; retry later")
INTERNAL = Refusal("STATUS$ERROR_INTERNAL", "Internal error")
STORE_FULL = Refusal("STATUS$ERROR_STORE_FULL", "The server's disk is full: not stored; retry later")
STORE_UNAVAILABLE = Refusal("STATUS$ERROR_STORE_UNAVAILABLE", "The store is unavailable; retry later")

_BY_ACTOR_ERROR: dict[type[actor_errors.ActorError], Refusal] = {
    actor_errors.SessionForbidden: FORBIDDEN,
    actor_errors.SessionFailed: SESSION_FAILED,
    actor_errors.TooManySessions: TOO_MANY_CONVERSATIONS,
    actor_errors.MailboxFull: BUSY,
    actor_errors.SupervisorClosed: SHUTTING_DOWN,
    actor_errors.InvalidAction: ACTION_INVALID,
    actor_errors.AgentBusy: ACTION_AGENT_BUSY,
    actor_errors.StoreFullError: STORE_FULL,  # before its base class: the first match wins
    actor_errors.StoreUnavailableError: STORE_UNAVAILABLE,
}


def refusal_for(error: BaseException) -> Refusal:
    for kind, refusal in _BY_ACTOR_ERROR.items():
        if isinstance(error, kind):
            return refusal
    return INTERNAL
