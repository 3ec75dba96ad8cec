"""One session as an actor: its mailbox loop, its log appends, the connections it counts and its agent.

Owns: ``SessionActor``. The supervisor creates it, loads it (``restore``) and runs ``run()`` in a task
whenever it has work; ``run()`` returns True when the actor parks IDLE (it then has no task at all) and False
when the incarnation has ended. Every state change goes through ``actors.lifecycle.next_state``.

Each action (``actors.actions``): append to the log (durable, fenced by the incarnation's placement lease)
-> publish to the node's ``actors.fanout.FanOut``, which owns the connections' cursors and replay -> hand to
the agent. The actor counts its connections (Join/Leave) for its ACTIVE/IDLE lifecycle and attaches them to
the fan-out. Agent turns run in a child task, so Join/Leave/Inspect are answered during a long turn. Knows
nothing of the registry, of other actors or of transports; it talks to its supervisor only through
``ActorHost``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import structlog
import trio

from actors.actions import ActionPath
from actors.agent_runtime import RuntimeSpan, has_lifespan
from actors.config import SupervisorConfig
from actors.connection import Connection
from actors.events import OutboundEvent, StoredEvent
from actors.fanout import FanOut
from actors.fenced_writes import append_fenced, save_snapshot
from actors.leases import LOST_LEASE
from actors.lifecycle import ActorState, Trigger, next_state
from actors.lifespan import AnyAgent
from actors.mailbox import Mailbox
from actors.messages import Act, ActorInfo, Inspect, Join, Leave, Message, Passivate, Stop
from actors.placement import Lease
from actors.stores.base import SessionRecord, Store

if TYPE_CHECKING:
    from actors.timers import Timer

log = structlog.get_logger(__name__)

STOPPED = "STATUS$STOPPED"
ERROR = "STATUS$ERROR"
SNAPSHOT_VERSION = 1

_NO_CONNS: dict[str, Connection] = {}  # shared by every actor without a connection; never written to


class ActorHost(Protocol):
    """What an actor may ask of its supervisor."""

    store: Store
    config: SupervisorConfig
    fanout: FanOut
    hooks: Callable[[str, str], Awaitable[None]] | None

    def count(self, kind: str, n: int = 1, **labels: str) -> None: ...

    def observe(self, kind: str, seconds: float, **labels: str) -> None: ...

    def state_changed(self, actor: SessionActor, old: ActorState, new: ActorState) -> None: ...

    def finalize(self, actor: SessionActor, leftovers: list[Message], *, normal_exit: bool) -> None: ...

    async def announce_closed(self, session_id: str, status: OutboundEvent, lease: Lease | None) -> None: ...

    def announce_closed_soon(self, session_id: str, status: OutboundEvent, lease: Lease | None) -> None: ...


class SessionActor(ActionPath):
    __slots__ = (
        "_append_lock",
        "_batch",
        "_changed",
        "_nursery",
        "_resume",
        "agent",
        "announce_release",
        "conns",
        "create",
        "evicting",
        "head",
        "host",
        "idle_timer",
        "killed",
        "last_activity",
        "lease",
        "loaded_once",
        "mailbox",
        "not_found",
        "owner",
        "restarts",
        "running",
        "session_id",
        "snapshot_event_id",
        "state",
    )

    def __init__(self, host: ActorHost, session_id: str, *, owner: str | None, create: bool) -> None:
        self.host = host
        self.session_id = session_id
        self.owner = owner
        self.create = create
        self.state = ActorState.LOADING
        self.mailbox: Mailbox[Message] = Mailbox(host.config.mailbox_size)
        self.conns: dict[str, Connection] = _NO_CONNS  # joined to this incarnation, by id (made on a Join)
        self.agent: AnyAgent | None = None
        self.head = -1
        self.snapshot_event_id = -1
        self.dirty = False
        self.running = False  # a trio task exists for this actor (loading, working, or in restart backoff)
        self.loaded_once = False
        self.not_found = False
        self.killed = False
        self.announce_release = False  # cluster mode: the lease's release tells watching nodes (idle end)
        self.evicting: str | None = None  # 'capacity' or 'user_cap' once chosen for eviction
        self.restarts = 0
        self.last_activity = 0.0
        self.idle_timer: Timer | None = None
        self.runtime: RuntimeSpan | None = None  # only for a lifespan agent's incarnation
        self.lease: Lease | None = None  # the placement lease of this incarnation (taken before loading)
        self._nursery: trio.Nursery | None = None
        self._append_lock: trio.StrictFIFOLock | None = None
        self._backlog: deque[StoredEvent] | None = None
        self._turn_done: trio.Event | None = None
        self._batch: list[Message] | None = None  # the batch being handled, and where a crash resumes it
        self._resume = 0
        self._seqs: dict[int | str, int] | None = None
        self._changed: trio.Event | None = None

    # ---- state -------------------------------------------------------------------------------------

    @property
    def idle_deadline(self) -> float | None:
        """When an IDLE actor passivates (trio time); None if never (or not IDLE)."""
        timer = self.idle_timer
        return None if timer is None else timer.deadline

    @property
    def fenced(self) -> bool:
        """The placement lease was lost: the actor never appends again."""
        return self.lease is LOST_LEASE

    def lose_lease(self) -> None:
        self.lease = LOST_LEASE

    def fire(self, trigger: Trigger) -> ActorState:
        old = self.state
        new = self.state = next_state(old, trigger)
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()
        self.host.state_changed(self, old, new)
        return new

    async def wait_changed(self) -> None:
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    @property
    def turn_running(self) -> bool:
        return self._turn_done is not None

    def quiescent(self) -> bool:
        return not self.conns and not self.mailbox and self._turn_done is None

    def info(self) -> ActorInfo:
        return ActorInfo(
            session_id=self.session_id,
            state=self.state.value,
            connections=tuple(self.conns),
            replaying=self.host.fanout.replaying(self.session_id),
            mailbox_depth=len(self.mailbox),
            last_event_id=self.head,
            turn_running=self.turn_running,
            agent_backlog=len(self._backlog or ()),
            restarts=self.restarts,
        )

    # ---- loading -----------------------------------------------------------------------------------

    async def restore(self, record: SessionRecord, agent: AnyAgent | None) -> None:
        """Adopt the store's record (LOADING -> ACTIVE or IDLE). Raises if the agent fails to start."""
        snap = record.snapshot or {}
        if has_lifespan(agent):  # started by ``run_with_runtime``, in the incarnation's one task
            self.runtime = RuntimeSpan(snap.get("agent"))
        elif agent is not None:
            await agent.start(snap.get("agent"))  # type: ignore[union-attr]
        self.agent = agent
        if record.owner is not None or self.owner is None:
            self.owner = record.owner
        self.head = record.last_event_id
        self.snapshot_event_id = record.snapshot_event_id
        self.dirty = False
        seqs = snap.get("client_seqs")
        if seqs and self._seqs is None:
            self._seqs = {seq: eid for seq, eid in seqs}
        self.loaded_once = True
        self.last_activity = trio.current_time()
        if self.conns:  # kept across a crash: those behind the reloaded head catch up from the store
            self.host.fanout.resync(self.session_id, self.head)
        self.fire(Trigger.LOADED_BUSY if (self.conns or self.mailbox) else Trigger.LOADED_IDLE)

    def crashed(self) -> None:
        """The incarnation raised: drop in-flight work, keep connections (demoted) and mailbox, and put the
        messages of the crashed batch that were not handled yet back at the front of the mailbox."""
        batch, self._batch = self._batch, None
        if batch is not None:
            self.mailbox.requeue(batch[self._resume :])
        self._nursery = None
        self._append_lock = None
        self._backlog = None
        self._turn_done = None
        self.agent = None
        self.runtime = None
        self.fire(Trigger.CRASH)

    # ---- the loop ----------------------------------------------------------------------------------

    async def run(self) -> bool:
        """Work until the actor parks IDLE (True) or the incarnation ends (False)."""
        self._append_lock = trio.StrictFIFOLock()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            parked = await self._loop()
            if not parked:
                nursery.cancel_scope.cancel()
        self._nursery = None
        self._append_lock = None
        return parked

    async def _loop(self) -> bool:
        mailbox = self.mailbox
        batch_limit = self.host.config.drain_batch
        while True:
            batch = mailbox.drain(batch_limit)
            if batch:
                if await self._handle_batch(batch):
                    return False
                continue
            if self.quiescent() and self.state in (ActorState.ACTIVE, ActorState.IDLE):
                if self.state is ActorState.ACTIVE:
                    self.fire(Trigger.QUIESCED)
                return True
            await mailbox.wait()

    def _wake(self) -> None:
        self.last_activity = trio.current_time()
        if self.state is ActorState.IDLE:
            self.fire(Trigger.WOKEN)

    async def _handle_batch(self, batch: list[Message]) -> bool:
        """Handle messages in order; True when the incarnation has ended.

        ``_batch[_resume:]`` is the part of the batch a crash would leave unanswered: ``crashed`` puts it
        back in the mailbox for the next incarnation (the Acts whose append failed were answered already)."""
        self._batch = batch
        i, n = 0, len(batch)
        while i < n:
            msg = batch[i]
            # A passivation or stop that crashes is retried by the next incarnation; any other message that
            # crashes the actor is not (it would crash it again).
            self._resume = i if isinstance(msg, Passivate | Stop) else i + 1
            i += 1
            if isinstance(msg, Act):
                acts = [msg]
                while i < n and isinstance(nxt := batch[i], Act):  # consecutive Acts: one store append
                    acts.append(nxt)
                    i += 1
                self._resume = i
                await self._act(acts)
            elif isinstance(msg, Join):
                self._join(msg)
            elif isinstance(msg, Leave):
                self._leave(msg)
            elif isinstance(msg, Inspect):
                msg.reply.set(self.info())
            elif isinstance(msg, Passivate):
                if msg.hard:
                    await self._passivate_hard(msg, batch[i:])
                    return True
                if await self._passivate_soft(msg, batch[i:]):
                    return True
            elif isinstance(msg, Stop):
                self._stop(msg, batch[i:])
                return True
            else:
                log.error("actor.unknown_message", message_type=type(msg).__name__)
        self._batch = None
        return False

    # ---- connections -------------------------------------------------------------------------------

    def _join(self, msg: Join) -> None:
        self._wake()
        conn = msg.conn
        conns = self.conns
        if conns is _NO_CONNS:
            conns = self.conns = {}
        conns.pop(conn.id, None)  # a rejoin with the same id replaces the entry (and goes last)
        conns[conn.id] = conn
        self.host.fanout.attach(self.session_id, conn, msg.latest_event_id, head=self.head)

    def connection_gone(self, conn_id: str) -> None:
        """The fan-out closed this connection by itself (slow, lagging): stop counting it, and wake the
        loop so it re-checks quiescence."""
        if self.conns.pop(conn_id, None) is not None:
            self.mailbox.wake()

    def close_connections(self, status: OutboundEvent | None, reason: str) -> None:
        """Send ``status`` to every connection of the session, then close them (none if handed off)."""
        had, self.conns = self.conns, _NO_CONNS
        if had:
            self.host.fanout.close_all(self.session_id, status, reason)

    def mailbox_poke(self) -> None:
        """Wake the loop so it re-checks quiescence (a turn ended)."""
        self.mailbox.wake()

    def _leave(self, msg: Leave) -> None:
        if self.conns.pop(msg.conn_id, None) is not None:
            self.host.fanout.detach(self.session_id, msg.conn_id)
            self.last_activity = trio.current_time()

    async def _append(
        self, payloads: list[dict[str, Any]], prefixes: list[str | None] | None = None,
        inbox_ids: list[str | None] | None = None,
    ) -> list[StoredEvent]:
        """Append (durable), then fan out. Serialised so ids are allocated and committed in order.
        ``prefixes``: per payload, its JSON text minus the closing brace if known (``StoredEvent.create``);
        ``inbox_ids``: per payload, the routed action it answers (cluster mode)."""
        lock = self._append_lock
        assert lock is not None
        try:
            lock.acquire_nowait()  # uncontended (the usual case): no extra scheduling round
        except trio.WouldBlock:
            await lock.acquire()
        try:
            first = self.head + 1
            if prefixes is None:
                events = [StoredEvent.create(first + k, p) for k, p in enumerate(payloads)]
            else:
                events = [
                    StoredEvent.create(first + k, p, prefix)
                    for k, (p, prefix) in enumerate(zip(payloads, prefixes, strict=True))
                ]
            await append_fenced(self.host.store, self.session_id, events, self.lease, inbox_ids)
            self.head = events[-1].id
            self.dirty = True
            self.last_activity = trio.current_time()
            self.host.count("events", len(events))
            self.host.fanout.publish(self.session_id, events)
        finally:
            lock.release()
        return events

    # ---- ending ------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        agent_snap = self.agent.snapshot() if self.agent is not None else None
        seqs = [[seq, eid] for seq, eid in (self._seqs or {}).items()]
        return {"v": SNAPSHOT_VERSION, "agent": agent_snap, "client_seqs": seqs}

    async def _save_snapshot(self, *, release: bool = False, announce: bool = False) -> None:
        head, snap = self.head, self.snapshot()
        # Released with the snapshot when ``release``: another node may take the session at once (the
        # supervisor's release that follows is a harmless compare-and-delete that forgets it here too).
        await save_snapshot(self.host.store, self.session_id, snap, head, self.lease, release=release,
                            announce=announce)
        self.snapshot_event_id = head
        self.dirty = False

    async def _checkpoint(self, name: str) -> None:
        hooks = self.host.hooks
        if hooks is not None:
            await hooks(name, self.session_id)

    async def _passivate_soft(self, msg: Passivate, rest: list[Message]) -> bool:
        """Idle deadline or eviction: only an IDLE actor with nothing pending; aborted by any arrival."""
        if self.state is not ActorState.IDLE or rest or not self.quiescent():
            return False
        self.fire(Trigger.PASSIVATE)
        await self._checkpoint("passivate:begin")
        await self._save_snapshot()
        await self._checkpoint("passivate:saved")
        if self.mailbox:
            self.host.count("passivations_aborted")
            self.fire(Trigger.ABORT)
            return False
        # No await from the emptiness check to the registry removal (or, with a runtime, to the ending being
        # decided; what arrives during its exit goes to the next incarnation): nothing can slip in between.
        self.host.count("passivations", reason=msg.reason)
        # Idle here; a connection on another node that came just too late hosts it again (not an eviction:
        # a node full of such sessions would evict and load them in turn).
        self.announce_release = msg.reason == "idle"
        self._end([], Trigger.PERSISTED, normal_exit=False)
        return True

    async def _passivate_hard(self, msg: Passivate, rest: list[Message]) -> None:
        """Operator, shutdown or per-user cap: close connections, finish turns, persist, end."""
        self.fire(Trigger.PASSIVATE)
        status = msg.status or STOPPED
        event = OutboundEvent.status(status, f"session closed: {msg.reason}",
                                     type_="info" if status == STOPPED else "error")
        self.close_connections(event, msg.reason)
        if msg.reason != "shutdown":  # a shutdown hands the session over: other nodes' connections stay
            await self.host.announce_closed(self.session_id, event, self.lease)
        await self._checkpoint("passivate:begin")
        while self._turn_done is not None:
            await self._turn_done.wait()
        # A shutdown hands the session over: a node serving its connections hosts it next.
        await self._save_snapshot(release=True, announce=msg.reason == "shutdown")
        await self._checkpoint("passivate:saved")
        self.host.count("passivations", reason=msg.reason)
        self._end(rest, Trigger.PERSISTED, normal_exit=False)

    def _stop(self, msg: Stop, rest: list[Message]) -> None:
        status = OutboundEvent.status(STOPPED, f"session stopped: {msg.reason}")
        self.close_connections(status, msg.reason)
        if msg.reason == "kill":  # not "lease lost": other nodes' connections then stay, fed from the log
            self.host.announce_closed_soon(self.session_id, status, self.lease)
        self.host.count("stops", reason=msg.reason)
        self._end(rest, Trigger.STOPPED, normal_exit=not self.killed)



