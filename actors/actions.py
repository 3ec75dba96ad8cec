"""The action path of a session actor: user actions in, log events out, turns queued for the agent.

Owns: ``ActionPath``, a mixin of ``actors.actor.SessionActor`` (it shares the actor's slots and is no
object of its own): validating a batch of ``Act`` messages, idempotency by ``client_seq`` (a bounded window,
persisted in the snapshot), the agent backlog limit, completing each stored event's JSON from the action's
own JSON instead of encoding it again, answering the acks, and the agent's ``emit``. The append itself
(fenced, then published to the node's fan-out) stays in the actor.

Knows nothing of connections, the registry or transports.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import structlog
import trio

from actors.agent_runtime import AgentTurns
from actors.errors import (
    ActorError,
    AgentBusy,
    InvalidAction,
    StoreFullError,
    StoreUnavailableError,
)
from actors.events import StoredEvent, canonical_json, utc_timestamp
from actors.lifespan import AnyAgent
from actors.messages import Act, ActResult
from actors.placement import Lease
from actors.stores.base import StoreFull, StoreUnavailable

if TYPE_CHECKING:
    from actors.actor import ActorHost

log = structlog.get_logger(__name__)


class ActionPath(AgentTurns):
    # The state only the action path and the turns write; initialised by the actor's __init__.
    __slots__ = ("_seqs",)

    _seqs: dict[int | str, int] | None  # client_seq -> event id (the idempotency window)

    if TYPE_CHECKING:
        host: ActorHost
        agent: AnyAgent | None
        lease: Lease | None
        session_id: str
        _nursery: trio.Nursery | None

        def _wake(self) -> None: ...

        async def _append(
            self, payloads: list[dict[str, Any]], prefixes: list[str | None] | None = None,
            inbox_ids: list[str | None] | None = None,
        ) -> list[StoredEvent]: ...


    async def _act(self, acts: list[Act]) -> None:
        self._wake()
        cfg = self.host.config
        seqs = self._seqs
        first_of_seq: dict[int | str, int] = {}  # client_seq -> index in ``accepted`` (same batch)
        duplicates: list[tuple[Act, int]] = []
        accepted: list[tuple[Act, dict[str, Any]]] = []
        prefixes: list[str | None] = []  # per accepted payload: its canonical JSON minus the closing brace
        room = cfg.agent_queue_size - len(self._backlog or ()) if self.agent is not None else len(acts)
        timestamp = utc_timestamp()
        stamp = None  # the JSON of the fields added to every action, made once the first one needs it
        lease = self.lease
        for act in acts:
            if act.inbox_fence is not None and (lease is None or lease.fence != act.inbox_fence):
                continue  # read from the inbox under another lease: the current owner reads it again
            action = act.action
            if not isinstance(action, dict) or not isinstance(action.get("action"), str):
                _fail(act, InvalidAction("an action must be an object with a string 'action' field"))
                continue
            seq = act.client_seq
            if seq is not None:
                if seqs is not None and seq in seqs:
                    if act.reply is not None:
                        act.reply.set(ActResult(seqs[seq], duplicate=True))
                    continue
                if seq in first_of_seq:
                    duplicates.append((act, first_of_seq[seq]))
                    continue
            if room <= 0:
                _fail(act, AgentBusy("the agent has too many actions waiting"))
                continue
            room -= 1
            payload = dict(action)
            # The action's own JSON (from the gateway) is extended rather than the payload encoded again,
            # when the added keys are all new ones (so they go last, as dict insertion puts them).
            text = act.action_json
            prefix = None
            if text is not None and len(text) > 2 and not ("source" in payload or "timestamp" in payload
                                                           or "id" in payload):
                if stamp is None:
                    stamp = ',"source":"user","timestamp":"' + timestamp + '"'  # JSON-safe: see utc_timestamp
                prefix = text[:-1] + stamp
            payload["source"] = "user"
            payload["timestamp"] = timestamp
            if "message" not in payload:
                payload["message"] = message = _message_of(payload)
                if prefix is not None:
                    prefix += ',"message":' + canonical_json(message)
            if seq is not None:
                first_of_seq[seq] = len(accepted)
            accepted.append((act, payload))
            prefixes.append(prefix)
        if not accepted:
            return
        inbox_ids = [act.inbox_id for act, _ in accepted]
        try:
            events = await self._append(
                [payload for _, payload in accepted], prefixes, inbox_ids if any(inbox_ids) else None
            )
        except BaseException as exc:
            transient = isinstance(exc, StoreUnavailable)
            error: ActorError
            if isinstance(exc, StoreFull):
                error = StoreFullError(f"could not persist the action: {exc}")
            elif transient:
                error = StoreUnavailableError(f"could not persist the action: {exc}")
            else:
                error = ActorError(f"could not persist the action: {type(exc).__name__}")
            for act, _ in accepted:
                _fail(act, error)
            for act, _ in duplicates:
                _fail(act, error)
            if isinstance(exc, StoreUnavailable) and not exc.may_have_applied:  # not stored, head unmoved
                log.warning("session.store_unavailable", session_id=self.session_id, error=str(exc),
                            actions=len(accepted))
                return
            raise
        for (act, _), event in zip(accepted, events, strict=True):
            if act.client_seq is not None:
                self._remember_seq(act.client_seq, event.id)
            if act.reply is not None:
                act.reply.set(ActResult(event.id))
        for act, index in duplicates:
            if act.reply is not None:
                act.reply.set(ActResult(events[index].id, duplicate=True))
        if self.agent is not None:
            backlog = self._backlog
            if backlog is None:
                backlog = self._backlog = deque()
            backlog.extend(self._intercepted(events))
            if self._turn_done is None:
                self._turn_done = trio.Event()
                assert self._nursery is not None
                self._nursery.start_soon(self._turns)

    def _remember_seq(self, seq: int | str, event_id: int) -> None:
        seqs = self._seqs
        if seqs is None:
            seqs = self._seqs = {}
        seqs[seq] = event_id
        if len(seqs) > self.host.config.idempotency_window:
            del seqs[next(iter(seqs))]

    async def _emit(self, payload: dict[str, Any]) -> StoredEvent:
        body = dict(payload)
        body.setdefault("source", "agent")
        body["timestamp"] = utc_timestamp()
        if "message" not in body:
            body["message"] = _message_of(body)
        delay = 0.05
        while True:
            try:
                (event,) = await self._append([body])
            except StoreUnavailable as exc:
                # The agent's output must not be lost to a transient fault (a full disk): it waits for
                # the store, in order, the next turn after it. Shutdown and passivation cancel the wait.
                # A write that may have been applied is not retried blindly: the incarnation ends and the
                # next one reloads the log.
                if exc.may_have_applied:
                    raise
                if delay == 0.05:
                    log.warning("session.emit_waiting_for_store", session_id=self.session_id, error=str(exc))
                await trio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            return event


def _fail(act: Act, error: BaseException) -> None:
    if act.reply is not None:
        act.reply.fail(error)


def _message_of(payload: dict[str, Any]) -> str:
    args = payload.get("args")
    if isinstance(args, dict):
        content = args.get("content")
        if isinstance(content, str):
            return content
    action = payload.get("action")
    return action if isinstance(action, str) else ""
