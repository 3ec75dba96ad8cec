"""One Engine.IO v4 socket as a sans-IO state machine, for either end of the connection.

Owns: ``SocketProtocol``: what a socket does with each packet from its peer, its outbox (the packets waiting
for the transport), and its heartbeat as one deadline (``next_deadline``; the owner calls ``on_timer`` when
it passes). The server role adds the polling GET/POST bookkeeping (overlaps are errors) and the upgrade
probe; the client role adds the reading of the server's OPEN packet. Phase changes go through
``_state.next_phase`` only. Never awaits, never touches a socket, never reads a clock: every method that
needs the time takes ``now``; never raises on the peer's input (it closes the socket instead).
Knows nothing of trio, HTTP, WebSocket objects or the application (``socket.py`` and ``server.client`` are
the glue).

Roles (``role=``, as h11's ``our_role``; the server role is the default and its per-packet path has no
role test): what differs is only what the protocol makes differ --

| packet from the peer | server role                          | client role                              |
|----------------------|--------------------------------------|------------------------------------------|
| OPEN ``0{...}``      | ignored (the server sends it)        | first packet: the handshake, else error  |
| PING ``2``           | error: v4 clients never ping         | PONG queued, heartbeat deadline pushed   |
| PONG ``3``           | heartbeat: next ping after interval  | ignored                                  |
| MESSAGE ``4``        | data for the application             | data for the application                 |
| CLOSE ``1``          | closed, "client disconnect"          | closed, "transport close"                |
| UPGRADE ``5``        | only on a probe                      | error (a websocket client never upgrades)|

Heartbeat: the server pings ``ping_interval`` after the handshake and after each pong and closes with
"ping timeout" when no pong comes within ``ping_timeout``; the client closes with "ping timeout" when no ping
came within ``pingInterval + pingTimeout`` of the handshake or of the last ping (``Heartbeat``).

Close reasons (the names python-socketio and Node use): "client disconnect" (the client sent ``1``),
"server disconnect", "ping timeout", "transport close" (the transport went away, or in the client role the
server sent ``1``), "transport error" (a protocol error: undecodable packet, a ping from the client,
overlapping requests, overflow; ``error`` says what it was when the core saw it).
"""

from __future__ import annotations

import math
from collections import deque
from enum import Enum

from server.engineio._state import Phase, PhaseError, Role, Trigger, is_open, is_polling, next_phase
from server.engineio.codec import (
    CLOSE,
    CLOSE_PACKET,
    MESSAGE,
    NOOP_PACKET,
    OPEN,
    PING,
    PING_PACKET,
    PONG,
    UPGRADE,
    DecodeError,
    Handshake,
    Outgoing,
    Packet,
    decode_handshake,
    encode_packet,
    encode_payload,
)
from server.engineio.config import EngineConfig

CLIENT_DISCONNECT = "client disconnect"
SERVER_DISCONNECT = "server disconnect"
PING_TIMEOUT = "ping timeout"
TRANSPORT_CLOSE = "transport close"
TRANSPORT_ERROR = "transport error"


class PollStart(Enum):
    READY = "ready"  # answer now with poll_take()
    WAIT = "wait"  # wait until poll_ready()
    OVERLAP = "overlap"  # a GET was already pending: this one gets 400, the socket is closed


class ProbeAction(Enum):
    REPLY = "reply"  # send "3probe" on the probe; pending GETs are now answered "6"
    UPGRADED = "upgraded"  # the probe is the transport now: flush the outbox over it
    FAILED = "failed"  # close the probe; the socket stays on polling
    IGNORE = "ignore"


class Heartbeat:
    """The Engine.IO v4 heartbeat as the client role sees it: the server pings, one must arrive in time.

    The deadline is ``pingInterval + pingTimeout`` after the handshake and after each ping; a connection
    that reaches it without a ping is dead ("ping timeout"). One deadline per connection, no sweeps.
    """

    __slots__ = ("deadline", "interval", "timeout")

    def __init__(self) -> None:
        self.interval = 0.0
        self.timeout = 0.0
        self.deadline = math.inf

    def start(self, now: float, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.deadline = now + interval + timeout

    def pinged(self, now: float) -> None:
        self.deadline = now + self.interval + self.timeout

    def expired(self, now: float) -> bool:
        return now >= self.deadline


class SocketProtocol:
    """The state of one Engine.IO socket. See the module docstring and ``_state.py``.

    ``SocketProtocol(sid, transport, config, now)`` is a server socket the server has just allocated;
    ``SocketProtocol.client()`` is the client end of a websocket, waiting for the server's OPEN packet.
    """

    __slots__ = (
        "_awaiting_pong",
        "_close_reply",
        "_config",
        "_heartbeat_at",
        "_linger_at",
        "_outbox",
        "close_reason",
        "error",
        "handshake",
        "heartbeat",
        "open",
        "phase",
        "poll_pending",
        "post_pending",
        "role",
        "sid",
        "upgrade_deadline",
    )

    def __init__(
        self, sid: str, transport: str, config: EngineConfig, now: float, *, role: Role = Role.SERVER
    ) -> None:
        self.sid = sid
        self.role = role
        self._config = config
        if role is Role.CLIENT:
            if transport != "websocket":
                raise ValueError("the client role speaks the websocket transport only")
            self.phase = Phase.OPENING
            self._heartbeat_at = math.inf  # armed by the handshake
        else:
            self.phase = Phase.WEBSOCKET if transport == "websocket" else Phase.POLLING
            self._heartbeat_at = now + config.ping_interval
        self.open = is_open(self.phase)  # kept in step by ``_move`` (read on every send)
        self._outbox: deque[Outgoing] | None = None  # created on first use
        self.close_reason: str | None = None
        self.error: str | None = None  # what the peer did wrong, when the core closed for it
        self.handshake: Handshake | None = None  # client role: the server's OPEN packet
        self.heartbeat: Heartbeat | None = Heartbeat() if role is Role.CLIENT else None
        self._close_reply = CLOSE_PACKET
        self._awaiting_pong = False
        self._linger_at = float("inf")
        self.upgrade_deadline = float("inf")
        self.poll_pending = False
        self.post_pending = False

    @classmethod
    def client(cls, config: EngineConfig | None = None) -> SocketProtocol:
        """The client end of a websocket that has just opened (OPENING): the sid, the ping interval and
        timeout come with the server's OPEN packet. ``config`` bounds the outbox (``max_buffered_packets``).
        """
        return cls("", "websocket", config or EngineConfig(), 0.0, role=Role.CLIENT)

    def __repr__(self) -> str:
        return f"<SocketProtocol {self.role.value} sid={self.sid} phase={self.phase.value}>"

    # -- the handshake ----------------------------------------------------------------------------------

    def open_packet(self, transport: str) -> str:
        """Server role: the ``0{...}`` open packet: sid, upgrades, pingInterval, pingTimeout (ms),
        maxPayload."""
        config = self._config
        return Handshake(
            self.sid, config.ping_interval, config.ping_timeout, config.max_payload,
            tuple(config.upgrades(transport)),
        ).encode()

    def _receive_handshake(self, packet: Packet, now: float) -> None:
        # Client role, OPENING: the first packet must be the server's OPEN.
        if packet.type != OPEN or not isinstance(packet.data, str):
            self._fail(f"expected the Engine.IO OPEN packet first, got type {packet.type}")
            return
        try:
            handshake = decode_handshake(packet.data)
        except DecodeError as exc:
            self._fail(str(exc))
            return
        self._move(Trigger.HANDSHAKE)
        self.sid = handshake.sid
        self.handshake = handshake
        heartbeat = self.heartbeat
        assert heartbeat is not None
        heartbeat.start(now, handshake.ping_interval, handshake.ping_timeout)
        self._heartbeat_at = heartbeat.deadline

    def _pinged(self, data: str | bytes, now: float) -> None:
        # Client role: answer the server's ping (echoing its data) and wait for the next one.
        heartbeat = self.heartbeat
        assert heartbeat is not None
        if self.queue(encode_packet(PONG, data if isinstance(data, str) else "")):
            heartbeat.pinged(now)
            self._heartbeat_at = heartbeat.deadline

    # -- state -------------------------------------------------------------------------------------------

    @property
    def transport(self) -> str:
        return "polling" if is_polling(self.phase) else "websocket"

    def _move(self, trigger: Trigger) -> None:
        self.phase = phase = next_phase(self.phase, trigger, self.role)
        self.open = is_open(phase)

    def _fail(self, error: str) -> None:
        # The peer broke the protocol: close at once, and say why.
        self.error = error
        self.abort(TRANSPORT_ERROR)

    def abort(self, reason: str) -> bool:
        """Close at once with ``reason``; the outbox is dropped. True if it was open (the application has
        to hear of it), False if it was already closing or closed (or, client role, still opening).
        A pending GET is answered ``6`` for a client close, ``1`` otherwise (as Node does)."""
        if self.phase is Phase.CLOSED:
            return False
        was_open = self.open
        self._move(Trigger.ABORT)
        if self.close_reason is None:  # else CLOSING's reason stands
            self.close_reason = reason
        self._close_reply = NOOP_PACKET if reason == CLIENT_DISCONNECT else CLOSE_PACKET
        self._outbox = None
        self.upgrade_deadline = float("inf")
        return was_open

    def server_close(self, now: float, reason: str = SERVER_DISCONNECT) -> bool:
        """The application closes the socket. Polling: the remaining packets and ``1`` wait for the next
        GET (CLOSING, at most ``close_linger``). WebSocket: closed at once. False if already closing."""
        if not self.open:
            return False
        self._move(Trigger.SERVER_CLOSE)
        self.close_reason = reason
        self.upgrade_deadline = float("inf")
        if self.phase is Phase.CLOSING:
            self._push(CLOSE_PACKET)
            self._linger_at = now + self._config.close_linger
        return True

    # -- outbox ------------------------------------------------------------------------------------------

    def _push(self, packet: Outgoing) -> None:
        if self._outbox is None:
            self._outbox = deque()
        self._outbox.append(packet)

    def queue(self, packet: Outgoing) -> bool:
        """Queue an encoded packet for the client. Dropped (False) once closing; over
        ``max_buffered_packets`` the socket closes with "transport error"."""
        if not self.open:
            return False
        if self._outbox is not None and len(self._outbox) >= self._config.max_buffered_packets:
            self.abort(TRANSPORT_ERROR)
            return False
        self._push(packet)
        return True

    @property
    def buffered(self) -> int:
        return len(self._outbox) if self._outbox is not None else 0

    def take_outbox(self) -> list[Outgoing]:
        """Everything queued, for a websocket to send now."""
        out = self._outbox
        self._outbox = None
        return list(out) if out else []

    # -- inbound packets ---------------------------------------------------------------------------------

    def receive(self, packet: Packet, now: float) -> str | bytes | None:
        """A packet from the peer on the socket's transport. Returns the data of a MESSAGE to hand to
        the application, else None. Packets after the socket closed are ignored (Node does the same)."""
        if not self.open:
            if self.phase is Phase.OPENING:
                self._receive_handshake(packet, now)
            return None
        kind = packet.type
        if kind == MESSAGE:
            return packet.data
        if kind == PONG:
            if self.role is Role.SERVER:
                self._awaiting_pong = False
                self._heartbeat_at = now + self._config.ping_interval
            # a client never pings, so a pong means nothing to it
        elif kind == PING:
            if self.role is Role.SERVER:
                self._fail("ping from the client")  # v4: only the server pings
            else:
                self._pinged(packet.data, now)
        elif kind == CLOSE:
            if self.role is Role.SERVER:
                self._client_close(now)
            else:
                self.abort(TRANSPORT_CLOSE)
        elif self.role is Role.CLIENT and kind in (OPEN, UPGRADE):
            self._fail(f"unexpected Engine.IO packet type {kind} on an open websocket")
        # Server role: OPEN, UPGRADE and NOOP outside an upgrade mean nothing; Node ignores them too.
        return None

    def _client_close(self, now: float) -> None:
        # Server role, the client's ``1``. With a GET pending (or on a websocket) the socket is gone at
        # once and that GET gets ``6``. With none, the GET the client sent together with the close may
        # simply not have been handled yet: keep the sid for ``client_close_linger`` so that GET gets
        # what it would have had it come first (Node answers in arrival order): what is queued, else
        # ``6``. Later requests get 400.
        if self.poll_pending or not is_polling(self.phase):
            self.abort(CLIENT_DISCONNECT)
            return
        self._move(Trigger.CLIENT_CLOSE)
        self.close_reason = CLIENT_DISCONNECT
        if not self._outbox:
            self._push(NOOP_PACKET)
        self._linger_at = now + self._config.client_close_linger
        self.upgrade_deadline = float("inf")

    def decode_error(self) -> None:
        """The client sent something undecodable: close at once."""
        self.abort(TRANSPORT_ERROR)

    # -- heartbeat ---------------------------------------------------------------------------------------

    @property
    def awaiting_pong(self) -> bool:
        """A ping went out and its pong has not come yet (server role)."""
        return self._awaiting_pong

    def next_deadline(self) -> float:
        """When ``on_timer`` must run next (heartbeat, or the end of CLOSING's linger)."""
        if self.phase is Phase.CLOSING:
            return self._linger_at
        if self.phase is Phase.CLOSED:
            return float("inf")
        return self._heartbeat_at

    def on_timer(self, now: float) -> None:
        """Run what is due: send a ping, or close on a missing pong, or end the linger; in the client
        role, close when no ping came in time."""
        if self.phase is Phase.CLOSING:
            if now >= self._linger_at:
                self._move(Trigger.LINGER_DONE)
                self._outbox = None
            return
        if not self.open or now < self._heartbeat_at:
            return
        if self._awaiting_pong or self.role is Role.CLIENT:
            self.abort(PING_TIMEOUT)
            return
        if self.queue(PING_PACKET):
            # The pong is due ping_timeout after the ping was *due*: a timer that fired late (a busy
            # loop) does not push the close past interval + timeout; at least half the timeout remains.
            timeout = self._config.ping_timeout
            self._awaiting_pong = True
            self._heartbeat_at = max(self._heartbeat_at + timeout, now + timeout / 2)

    # -- polling (server role) ---------------------------------------------------------------------------

    def poll_begin(self) -> PollStart:
        """A GET arrived. A second concurrent GET is an error: the socket closes, the pending GET gets
        ``1`` and this one a 400."""
        if self.poll_pending:
            self.abort(TRANSPORT_ERROR)
            return PollStart.OVERLAP
        self.poll_pending = True
        return PollStart.READY if self.poll_ready() else PollStart.WAIT

    def poll_ready(self) -> bool:
        """True when the pending GET can be answered."""
        phase = self.phase
        return (
            phase is Phase.CLOSED
            or phase is Phase.UPGRADING
            or phase is Phase.WEBSOCKET
            or bool(self._outbox)
        )

    def poll_take(self) -> str:
        """The body for the pending GET: everything queued as one payload, ``6`` during an upgrade or
        after it, or the close reply once closed. Taking the close packet ends CLOSING."""
        self.poll_pending = False
        phase = self.phase
        if phase is Phase.CLOSED:
            return self._close_reply
        if phase is Phase.UPGRADING or phase is Phase.WEBSOCKET or not self._outbox:
            return NOOP_PACKET
        payload = encode_payload(list(self._outbox))
        self._outbox = None
        if phase is Phase.CLOSING:
            self._move(Trigger.LINGER_DONE)
        return payload

    def poll_abandoned(self) -> None:
        """The pending GET went away before it was answered (the client left): close, as Node does."""
        if self.poll_pending:
            self.poll_pending = False
            self.abort(TRANSPORT_CLOSE)

    def post_begin(self) -> bool:
        """A POST arrived. False if another is still being processed: the socket is closed."""
        if self.post_pending:
            self.abort(TRANSPORT_ERROR)
            return False
        self.post_pending = True
        return True

    def post_end(self) -> None:
        self.post_pending = False

    # -- upgrade (server role) ---------------------------------------------------------------------------

    def attach_probe(self, now: float) -> None:
        """A websocket arrived with this sid. ``PhaseError`` unless the socket is on polling with no
        upgrade in progress (a second websocket, or one after the upgrade, must be closed)."""
        if not self._config.allow_upgrades:
            raise PhaseError("upgrades are disabled")
        self._move(Trigger.PROBE_ATTACH)
        self.upgrade_deadline = now + self._config.upgrade_timeout

    def receive_probe(self, packet: Packet) -> ProbeAction:
        """A packet on the probe websocket."""
        if self.phase is not Phase.PROBING and self.phase is not Phase.UPGRADING:
            return ProbeAction.FAILED
        if packet.type == PING and packet.data == "probe" and self.phase is Phase.PROBING:
            self._move(Trigger.PROBE_PING)
            return ProbeAction.REPLY
        if packet.type == UPGRADE:
            self._move(Trigger.PROBE_UPGRADE)
            self.upgrade_deadline = float("inf")
            return ProbeAction.UPGRADED
        self.probe_failed()
        return ProbeAction.FAILED

    def probe_failed(self) -> None:
        """The probe closed, timed out or sent something else: the socket stays on polling."""
        if self.phase is Phase.PROBING or self.phase is Phase.UPGRADING:
            self._move(Trigger.PROBE_FAIL)
        self.upgrade_deadline = float("inf")
