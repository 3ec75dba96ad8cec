"""Errors the actor runtime raises to its callers (the gateway, the CLI, tests).

Owns: the exception hierarchy rooted at ``ActorError``. Knows nothing of transports: the gateway maps these to
Socket.IO refusals or ack errors.
"""

from __future__ import annotations


class ActorError(Exception):
    """Base of every error the actor runtime reports to a sender. ``code`` is stable, for wire errors."""

    code = "ACTOR_ERROR"


class MailboxFull(ActorError):
    """The session's mailbox is at capacity: the message was not accepted (the sender may retry later)."""

    code = "MAILBOX_FULL"


class MailboxClosed(ActorError):
    """The mailbox belongs to an incarnation that has ended. Internal: the supervisor retries elsewhere."""

    code = "MAILBOX_CLOSED"


class SessionFailed(ActorError):
    """The session exceeded its restart budget (or crashed under a temporary policy)."""

    code = "SESSION_FAILED"


class TooManySessions(ActorError):
    """No room for another live session: the cap is reached and no IDLE session can be evicted."""

    code = "TOO_MANY_SESSIONS"


class SessionForbidden(ActorError):
    """The session belongs to another user."""

    code = "SESSION_FORBIDDEN"


class SessionNotFound(ActorError):
    """The session does not exist and the caller asked not to create it."""

    code = "SESSION_NOT_FOUND"


class SupervisorClosed(ActorError):
    """The supervisor is shutting down (or not running): no new work is accepted."""

    code = "SUPERVISOR_CLOSED"


class InvalidAction(ActorError):
    """An Act carried an action that is not a JSON object with a string ``action`` field."""

    code = "INVALID_ACTION"


class AgentBusy(ActorError):
    """The agent's bounded backlog of actions is full; the action was not accepted."""

    code = "AGENT_BUSY"


class StoreUnavailableError(ActorError):
    """The store could not persist the action (an I/O fault, or its server did not answer): not
    acknowledged; retry later (with Redis its outcome may be unknown: resend with the same client_seq)."""

    code = "STORE_UNAVAILABLE"


class StoreFullError(StoreUnavailableError):
    """The store's disk is full: the action was not stored; retry once space returns."""

    code = "STORE_FULL"
