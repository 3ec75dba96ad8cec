"""The Engine.IO socket lifecycle: every phase transition lives in this file.

Owns: ``Phase``, ``Trigger`` and the ``TRANSITIONS`` table; ``next_phase`` is the only way a socket changes
phase, and a (phase, trigger) pair missing from the table is an error (``PhaseError``), never a silent
no-op. Knows nothing of packets, buffers, timers or I/O (``protocol.py`` decides *when* a trigger fires).

Theory of operation (Engine.IO v4, as the Node engine.io 6.6 server behaves):

* A socket opened over polling starts in POLLING; one opened over a websocket starts in WEBSOCKET.
* Upgrade: a websocket carrying the sid of a POLLING socket attaches as a probe (PROBING). The client sends
  ``2probe``; the server answers ``3probe`` on the probe and from then on answers GETs with ``6``
  (UPGRADING). The client's ``5`` on the probe switches the socket to WEBSOCKET (Node also accepts ``5``
  without a probe ping). Any other packet on the probe, the probe closing, or ``upgrade_timeout`` passing
  drops the probe and the socket stays on polling.
* Closing: the server closing a polling socket goes to CLOSING, where the session lingers until a GET
  collects the remaining packets and the close packet (or ``close_linger`` passes). Every other close
  (client close, protocol error, ping timeout, server close on a websocket) goes straight to CLOSED.

Heartbeats are not phases: they are one deadline per socket, kept in ``protocol.py``.
"""

from __future__ import annotations

from enum import Enum


class Phase(Enum):
    POLLING = "polling"  # transport polling, no upgrade in progress
    PROBING = "probing"  # polling; a websocket probe is attached, waiting for "2probe" (or "5")
    UPGRADING = "upgrading"  # polling; "3probe" sent, GETs answered "6", waiting for "5" on the probe
    WEBSOCKET = "websocket"  # transport websocket (opened so, or upgraded)
    CLOSING = "closing"  # server closed a polling socket; waiting for the GET that takes the close packet
    CLOSED = "closed"  # gone; the sid is unknown from now on


class Trigger(Enum):
    PROBE_ATTACH = "probe attach"  # a websocket arrived with this sid
    PROBE_PING = "probe ping"  # "2probe" on the probe
    PROBE_UPGRADE = "probe upgrade"  # "5" on the probe
    PROBE_FAIL = "probe fail"  # other packet on the probe, probe closed, or upgrade timeout
    SERVER_CLOSE = "server close"  # the application closed the socket
    ABORT = "abort"  # client close, protocol error, ping timeout, transport gone
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
    (Phase.WEBSOCKET, Trigger.SERVER_CLOSE): Phase.CLOSED,
    **{(phase, Trigger.ABORT): Phase.CLOSED for phase in (*_POLLING_PHASES, Phase.WEBSOCKET, Phase.CLOSING)},
    (Phase.CLOSING, Trigger.LINGER_DONE): Phase.CLOSED,
}


def next_phase(phase: Phase, trigger: Trigger) -> Phase:
    """The phase after ``trigger`` in ``phase``; ``PhaseError`` if the table does not allow it."""
    try:
        return TRANSITIONS[phase, trigger]
    except KeyError:
        raise PhaseError(f"{trigger.value} not allowed in phase {phase.value}") from None


def is_polling(phase: Phase) -> bool:
    """True while the socket's transport is polling (including an upgrade in progress and CLOSING)."""
    return phase in _POLLING_PHASES or phase is Phase.CLOSING


def is_open(phase: Phase) -> bool:
    """True until the socket starts closing: the application may send, packets are accepted."""
    return phase is not Phase.CLOSING and phase is not Phase.CLOSED
