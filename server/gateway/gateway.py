"""The OpenHands session protocol on top of Socket.IO and the actor runtime.

Owns: the three handlers (``connect``, ``oh_user_action``, ``disconnect``) and the per-connection record
(which session a sid joined, as which user, through which ``ActorRef``). A connect Joins the session's actor
(rehydrating it if needed; the actor attaches the connection to the node's ``FanOut``, which replays and
delivers the log), an action becomes an ``Act`` whose ack carries the assigned event id, a disconnect
Leaves. Knows nothing of HTTP, Engine.IO or stores; it reaches the actors only through the ``ActorRef``
handles the ``Supervisor`` hands out.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import structlog

from actors.errors import ActorError, SessionNotFound
from actors.events import canonical_json
from actors.messages import Act, ActResult, Join, Leave
from actors.ref import ActorRef
from actors.reply import Reply
from actors.supervisor import Supervisor
from server.gateway import errors
from server.gateway.auth import Authenticator, AuthError
from server.gateway.config import GatewayConfig
from server.gateway.connection import SioConnection
from server.socketio import ConnectionRefusedError, Server

log = structlog.get_logger(__name__)

OH_USER_ACTION = "oh_user_action"
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass(slots=True)
class _Joined:
    ref: ActorRef  # the session, acting for the connection's user
    conn: SioConnection
    since: float = field(default_factory=time.time)  # unix time the connect was accepted (admin view)

    @property
    def session_id(self) -> str:
        return self.ref.session_id

    @property
    def user_id(self) -> str:
        assert self.ref.user_id is not None
        return self.ref.user_id


@dataclass(frozen=True, slots=True)
class JoinedConnection:
    """Read-only view of one joined connection, for the admin API."""

    sid: str
    session_id: str
    user_id: str
    since: float


def _refuse(refusal: errors.Refusal) -> ConnectionRefusedError:
    return ConnectionRefusedError(refusal.message, refusal.connect_error_data())


def parse_latest_event_id(raw: str | None) -> int:
    """``latest_event_id`` as sent by clients; anything that is not an integer >= -1 means -1 (from the
    start)."""
    if raw is None:
        return -1
    try:
        value = int(raw)
    except ValueError:
        return -1
    return value if value >= -1 else -1


class Gateway:
    def __init__(
        self,
        sio: Server,
        supervisor: Supervisor,
        authenticator: Authenticator,
        config: GatewayConfig | None = None,
    ) -> None:
        self._sio = sio
        self._supervisor = supervisor
        self._auth = authenticator
        self.config = config or GatewayConfig()
        self._joined: dict[str, _Joined] = {}
        ns = self.config.namespace
        sio.on("connect", namespace=ns)(self.connect)
        sio.on("disconnect", namespace=ns)(self.disconnect)
        sio.on(OH_USER_ACTION, namespace=ns)(self.user_action)

    @property
    def connection_count(self) -> int:
        return len(self._joined)

    def connections(self, session_id: str | None = None) -> list[JoinedConnection]:
        """The joined connections (of one session, or all). O(connections): for the admin API only."""
        return [
            JoinedConnection(sid, j.session_id, j.user_id, j.since)
            for sid, j in self._joined.items()
            if session_id is None or j.session_id == session_id
        ]

    def session_of(self, sid: str) -> str | None:
        joined = self._joined.get(sid)
        return None if joined is None else joined.session_id

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        conversation_id = (query.get("conversation_id") or [""])[0]
        bound = log.bind(sid=sid, session_id=conversation_id or None)
        if not conversation_id:
            raise _refuse(errors.MISSING_CONVERSATION_ID)
        if not CONVERSATION_ID.match(conversation_id):
            raise _refuse(errors.INVALID_CONVERSATION_ID)
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            token = (query.get("session_api_key") or [None])[0]
        try:
            user_id = await self._auth.authenticate(token, environ)
        except AuthError as exc:
            bound.info("gateway.refused", reason=str(exc))
            raise _refuse(errors.INVALID_CREDENTIALS) from None
        latest_event_id = parse_latest_event_id((query.get("latest_event_id") or [None])[0])
        conn = SioConnection(self._sio, sid, self.config.namespace)
        # Recorded before the Join so a disconnect racing the connect handler still Leaves.
        ref = self._supervisor.ref(conversation_id, user_id=user_id)
        self._joined[sid] = _Joined(ref, conn)
        try:
            await ref.tell(Join(conn, latest_event_id))
        except ActorError as exc:
            del self._joined[sid]
            refusal = errors.refusal_for(exc)
            bound.info("gateway.refused", msg_id=refusal.msg_id)
            raise _refuse(refusal) from None
        bound.debug("gateway.joined", user_id=user_id, latest_event_id=latest_event_id)

    async def user_action(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        joined = self._joined.get(sid)
        if joined is None:
            return errors.ACTION_NOT_JOINED.ack()
        if extra or not isinstance(data, dict) or not isinstance(data.get("action"), str):
            return errors.ACTION_INVALID.ack()
        try:
            text = canonical_json(data)
            # A lone surrogate encodes to JSON but not to UTF-8 (UnicodeEncodeError is a ValueError).
            size = len(text) if text.isascii() else len(text.encode())
        except (TypeError, ValueError):
            return errors.ACTION_INVALID.ack()
        if size > self.config.max_action_bytes:
            return errors.ACTION_TOO_LARGE.ack()
        client_seq = data.get("client_seq")
        if not isinstance(client_seq, int | str) or isinstance(client_seq, bool):
            client_seq = None
        reply: Reply[ActResult] = Reply()
        act = Act(sid, data, reply, client_seq, action_json=text)
        ref = joined.ref
        try:
            # A live session takes it without a scheduling round; ``reply.get`` is the checkpoint.
            if not ref.tell_nowait(act):
                await ref.tell(act)
            result = await reply.get()
        except ActorError as exc:
            return errors.refusal_for(exc).ack()
        ack: dict[str, Any] = {"id": result.event_id}
        if result.duplicate:
            ack["duplicate"] = True
        return ack

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        joined = self._joined.pop(sid, None)
        if joined is None:
            return
        try:
            # Only to the live incarnation: if it is gone, the handle went with it (no rehydration for this).
            await joined.ref.tell(Leave(sid, str(reason or "disconnect")), live_only=True)
        except SessionNotFound:
            pass  # passivated or failed meanwhile: nothing holds the connection any more
        except ActorError as exc:
            log.warning("gateway.leave_failed", sid=sid, session_id=joined.session_id, error=exc.code)
