"""The registry: which session actors are live on this node, and their bookkeeping by state.

Owns: ``Registry``: ``session_id -> SessionActor`` (one live incarnation per session id: a lookup that
misses makes and registers the incarnation at once, with no await, so concurrent callers share it: that is
single-flight rehydration), ``resolve`` (wait until it is loaded, check ownership), the IDLE and FAILED
indexes (the coldest IDLE first), the per-user index and the per-state counts. Hands out nothing but
actors to its supervisor; the public handle is ``actors.ref.ActorRef``.

Knows nothing of how actors are spawned, timed, evicted or restarted (its owner passes ``make``), nor of
stores, placement or transports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import trio

from actors.errors import SessionFailed, SessionForbidden, SessionNotFound
from actors.lifecycle import ActorState

if TYPE_CHECKING:
    from actors.actor import SessionActor

S = ActorState

MakeActor = Callable[[str, "str | None", bool], "SessionActor"]
"""``make(session_id, user_id, create)``: a new incarnation, already spawned (may raise to refuse)."""


class Registry:
    __slots__ = ("_actors", "_emptied", "by_user", "failed", "idle", "state_counts")

    def __init__(self) -> None:
        self._actors: dict[str, SessionActor] = {}
        self.idle: dict[str, SessionActor] = {}  # IDLE actors, the coldest first
        self.failed: dict[str, SessionActor] = {}
        self.by_user: dict[str, set[str]] = {}
        self.state_counts: dict[ActorState, int] = dict.fromkeys(ActorState, 0)
        self._emptied: trio.Event | None = None

    def __len__(self) -> int:
        return len(self._actors)

    def __iter__(self) -> Iterator[SessionActor]:
        return iter(list(self._actors.values()))

    def get(self, session_id: str) -> SessionActor | None:
        return self._actors.get(session_id)

    # ---- membership ----------------------------------------------------------------------------------

    def add(self, actor: SessionActor) -> None:
        """Register a new LOADING incarnation (replacing an ended one)."""
        self._actors[actor.session_id] = actor
        self.state_counts[S.LOADING] += 1

    def get_or_make(
        self, session_id: str, user_id: str | None, create: bool, make: MakeActor
    ) -> SessionActor:
        actor = self._actors.get(session_id)
        if actor is not None:
            return actor
        actor = make(session_id, user_id, create)
        self.add(actor)
        return actor

    async def resolve(
        self, session_id: str, user_id: str | None, create: bool, make: MakeActor, *, wait: bool
    ) -> SessionActor:
        """The live incarnation, made if needed; with ``wait``, once it is loaded and owned by ``user_id``."""
        while True:
            actor = self.get_or_make(session_id, user_id, create, make)
            if actor.state is S.FAILED:
                raise SessionFailed(f"session {session_id} failed")
            if not actor.loaded_once:
                if not wait:
                    return actor  # messages queue while it loads
                await actor.wait_changed()
                if actor.not_found:  # the store has none (create=False), or another node hosts it
                    raise SessionNotFound(f"no session {session_id}")
                if not actor.loaded_once and self._actors.get(session_id) is not actor:
                    # Ended without ever loading (its load crashed and it was not restarted): making
                    # another one here would crash the same way, again and again.
                    raise SessionFailed(f"session {session_id} failed to load")
                continue
            if user_id is not None and actor.owner is not None and actor.owner != user_id:
                raise SessionForbidden(f"session {session_id} belongs to another user")
            return actor

    def remove(self, actor: SessionActor) -> bool:
        """Forget ``actor`` everywhere; True if it was the registered incarnation."""
        sid = actor.session_id
        registered = self._actors.get(sid) is actor
        if registered:
            del self._actors[sid]
        if self.idle.get(sid) is actor:
            del self.idle[sid]
        if self.failed.get(sid) is actor:
            del self.failed[sid]
        if actor.owner is not None:
            owned = self.by_user.get(actor.owner)
            if owned is not None and self._actors.get(sid) is None:
                owned.discard(sid)
                if not owned:
                    del self.by_user[actor.owner]
        if not self._actors and self._emptied is not None:
            self._emptied.set()
            self._emptied = None
        return registered

    def mark_failed(self, actor: SessionActor) -> None:
        self.failed[actor.session_id] = actor

    def own(self, actor: SessionActor) -> set[str]:
        """Record ``actor`` among its owner's sessions; returns them (ids)."""
        assert actor.owner is not None
        owned = self.by_user.setdefault(actor.owner, set())
        owned.add(actor.session_id)
        return owned

    async def wait_empty(self) -> None:
        while self._actors:
            if self._emptied is None:
                self._emptied = trio.Event()
            await self._emptied.wait()

    # ---- states --------------------------------------------------------------------------------------

    def count_state(self, old: ActorState, new: ActorState) -> None:
        counts = self.state_counts
        counts[old] -= 1
        counts[new] += 1

    def live_states(self) -> dict[str, int]:
        return {state.value: n for state, n in self.state_counts.items() if state is not S.PASSIVATED}
