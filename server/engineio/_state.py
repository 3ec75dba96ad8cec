"""The Engine.IO socket lifecycle, for both roles: every phase transition lives in this file.

Owns: ``Role``, ``Phase``, ``Trigger`` and one transition table per role (``TRANSITIONS`` for the server,
``CLIENT_TRANSITIONS`` for the client, both in ``ROLE_TRANSITIONS``); ``next_phase`` is the only way a
socket changes phase, and a (phase, trigger) pair missing from its role's table is an error
(``PhaseError``), never a silent no-op. Knows nothing of packets, buffers, timers or I/O (``protocol.py``
decides *when* a trigger fires).

Theory of operation (Engine.IO v4, as the Node engine.io 6.6 server and engine.io-client behave). The two
ends of a connection run the same socket core with a different ``Role``, as h11's ``our_role``: the server
sends the OPEN packet and pings, the client receives the OPEN packet and answers pings.

Server role:

* A socket opened over polling starts in POLLING; one opened over a websocket starts in WEBSOCKET.
* Upgrade: a websocket carrying the sid of a POLLING socket attaches as a probe (PROBING). The client sends
  ``2probe``; the server answers ``3probe`` on the probe and from then on answers GETs with ``6``
  (UPGRADING). The client's ``5`` on the probe switches the socket to WEBSOCKET (Node also accepts ``5``
  without a probe ping). Any other packet on the probe, the probe closing, or ``upgrade_timeout`` passing
  drops the probe and the socket stays on polling.
* Closing: the server closing a polling socket goes to CLOSING, where the session lingers until a GET
  collects the remaining packets and the close packet (or ``close_linger`` passes). The client closing a
  polling socket (``1`` in a POST) while no GET is pending also goes to CLOSING, for
  ``client_close_linger``: the next GET is answered ``6``, as it would have been had it arrived first
  (the two requests are concurrent; the answer must not depend on which one the scheduler runs first).
  Every other close (client close with a GET pending or on a websocket, protocol error, ping timeout,
  server close on a websocket) goes straight to CLOSED.

Client role (websocket only, as our trio client):

* The socket starts in OPENING once the websocket is open; the server's OPEN packet (HANDSHAKE) moves it to
  WEBSOCKET. Anything else first, a bad handshake, the server's CLOSE packet, a ping timeout or the transport
  going away ends it (ABORT, straight to CLOSED).

Heartbeats are not phases: they are one deadline per socket, kept in ``protocol.py``.
"""

from __future__ import annotations

from enum import Enum


class Role(Enum):
    SERVER = "server"  # accepts the connection: sends OPEN, pings, answers polling requests
    CLIENT = "client"  # opens the connection: receives OPEN, answers pings


class Phase(Enum):
    OPENING = "opening"  # client role: transport open, waiting for the server's OPEN packet
    POLLING = "polling"  # transport polling, no upgrade in progress
    PROBING = "probing"  # polling; a websocket probe is attached, waiting for "2probe" (or "5")
    UPGRADING = "upgrading"  # polling; "3probe" sent, GETs answered "6", waiting for "5" on the probe
    WEBSOCKET = "websocket"  # transport websocket (opened so, or upgraded)
    CLOSING = "closing"  # server closed a polling socket; waiting for the GET that takes the close packet
    CLOSED = "closed"  # gone; the sid is unknown from now on


class Trigger(Enum):
    HANDSHAKE = "handshake"  # client role: the server's OPEN packet arrived
    PROBE_ATTACH = "probe attach"  # a websocket arrived with this sid
    PROBE_PING = "probe ping"  # "2probe" on the probe
    PROBE_UPGRADE = "probe upgrade"  # "5" on the probe
    PROBE_FAIL = "probe fail"  # other packet on the probe, probe closed, or upgrade timeout
    SERVER_CLOSE = "server close"  # the application closed the socket
    CLIENT_CLOSE = "client close"  # the client's ``1`` in a POST while no GET was pending
    ABORT = "abort"  # peer close, protocol error, ping timeout, transport gone
    LINGER_DONE = "linger done"  # the close packet was collected, or close_linger passed


class PhaseError(Exception):
    """A trigger that is not allowed in the current phase."""


_POLLING_PHASES = (Phase.POLLING, Phase.PROBING, Phase.UPGRADING)

TRANSITIONS: dict[tuple[Phase, Trigger], Phase] = {
    (Phase.POLLING, Trigger.PROBE_ATTACH): Phase.PROBING,
    (Phase.PROBING, Trigger.PROBE_PING): Phase.UPGRADING,
    (Phase.PROBING, Trigger.PROBE_UPGRADE): Phase.WEBSOCKET,
    (Phase.UPGRADING, Trigger.PROBE_UPGRADE): Phase.WEBSOCKET,
    (Phase.PROBING, Trigger.PROBE_FAIL): Phase.POLLING,
    (Phase.UPGRADING, Trigger.PROBE_FAIL): Phase.POLLING,
    **{(phase, Trigger.SERVER_CLOSE): Phase.CLOSING for phase in _POLLING_PHASES},
    **{(phase, Trigger.CLIENT_CLOSE): Phase.CLOSING for phase in _POLLING_PHASES},
    (Phase.WEBSOCKET, Trigger.SERVER_CLOSE): Phase.CLOSED,
    **{(phase, Trigger.ABORT): Phase.CLOSED for phase in (*_POLLING_PHASES, Phase.WEBSOCKET, Phase.CLOSING)},
    (Phase.CLOSING, Trigger.LINGER_DONE): Phase.CLOSED,
}
"""The server role's table."""

CLIENT_TRANSITIONS: dict[tuple[Phase, Trigger], Phase] = {
    (Phase.OPENING, Trigger.HANDSHAKE): Phase.WEBSOCKET,
    (Phase.OPENING, Trigger.ABORT): Phase.CLOSED,
    (Phase.WEBSOCKET, Trigger.ABORT): Phase.CLOSED,
}
"""The client role's table (websocket transport only)."""

ROLE_TRANSITIONS: dict[Role, dict[tuple[Phase, Trigger], Phase]] = {
    Role.SERVER: TRANSITIONS,
    Role.CLIENT: CLIENT_TRANSITIONS,
}


def next_phase(phase: Phase, trigger: Trigger, role: Role = Role.SERVER) -> Phase:
    """The phase after ``trigger`` in ``phase``; ``PhaseError`` if ``role``'s table does not allow it."""
    try:
        return ROLE_TRANSITIONS[role][phase, trigger]
    except KeyError:
        raise PhaseError(f"{trigger.value} not allowed in phase {phase.value} ({role.value} role)") from None


def is_polling(phase: Phase) -> bool:
    """True while the socket's transport is polling (including an upgrade in progress and CLOSING)."""
    return phase in _POLLING_PHASES or phase is Phase.CLOSING


def is_open(phase: Phase) -> bool:
    """True from the handshake until the socket starts closing: the application may send, packets are
    accepted."""
    return phase is not Phase.OPENING and phase is not Phase.CLOSING and phase is not Phase.CLOSED
