"""``ActorRef``: the handle to a session that the supervisor hands out instead of the actor.

Owns: ``ActorRef``. A ref names a session, not an incarnation (a virtual actor, as in Orleans): telling it
something rehydrates the session if it is passivated, and a ref stays valid across passivation, restarts
and eviction. It carries the user it acts for, so every message is checked against the session's owner.
It holds no state of the actor; it only forwards to its ``RefHost`` (the supervisor).

Knows nothing of transports, stores or placement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from actors.messages import Act, ActorInfo, ActResult, Inspect, Message
from actors.reply import Reply

if TYPE_CHECKING:
    from actors.introspection import SessionInfo


class RefHost(Protocol):
    async def deliver(self, session_id: str, msg: Message, *, user_id: str | None = None,
                      create: bool = True, live_only: bool = False) -> None: ...

    def tell_nowait(self, session_id: str, msg: Message, *, user_id: str | None = None) -> bool: ...

    async def ensure(self, session_id: str, *, user_id: str | None = None,
                     create: bool = True) -> SessionInfo: ...

    def info(self, session_id: str) -> SessionInfo | None: ...


class ActorRef:
    __slots__ = ("_host", "session_id", "user_id")

    def __init__(self, host: RefHost, session_id: str, user_id: str | None = None) -> None:
        self._host = host
        self.session_id = session_id
        self.user_id = user_id

    def __repr__(self) -> str:
        return f"ActorRef({self.session_id!r}, user_id={self.user_id!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ActorRef) and other._host is self._host
                and other.session_id == self.session_id and other.user_id == self.user_id)

    def __hash__(self) -> int:
        return hash((self.session_id, self.user_id))

    async def tell(self, msg: Message, *, create: bool = True, live_only: bool = False) -> None:
        """Put ``msg`` in the session's mailbox (rehydrating it unless ``live_only``; see
        ``Supervisor.deliver`` for the errors)."""
        await self._host.deliver(self.session_id, msg, user_id=self.user_id, create=create,
                                 live_only=live_only)

    def tell_nowait(self, msg: Message) -> bool:
        """``tell`` without an await for a live, loaded session; False (nothing queued) when ``tell`` is
        needed instead."""
        return self._host.tell_nowait(self.session_id, msg, user_id=self.user_id)

    async def ask_act(self, action: dict[str, Any], *, conn_id: str | None = None,
                      client_seq: int | str | None = None, action_json: str | None = None) -> ActResult:
        """Append a user action; returns the id it got in the session's log."""
        reply: Reply[ActResult] = Reply()
        act = Act(conn_id, action, reply, client_seq, action_json=action_json)
        if not self.tell_nowait(act):
            await self.tell(act)
        return await reply.get()

    async def ask_inspect(self) -> ActorInfo:
        """A consistent reading taken inside the actor (between two of its messages)."""
        reply: Reply[ActorInfo] = Reply()
        await self.tell(Inspect(reply))
        return await reply.get()

    async def ensure(self, *, create: bool = True) -> SessionInfo:
        """Spawn or rehydrate the session and wait until it is loaded."""
        return await self._host.ensure(self.session_id, user_id=self.user_id, create=create)

    def info(self) -> SessionInfo | None:
        """Cheap introspection of the live incarnation, None when the session is not live."""
        return self._host.info(self.session_id)
