"""Sans-IO tests of the socket state machine: one test per row of the Engine.IO part of PROTOCOL.md
that the protocol core decides (routing and HTTP codes are in test_server.py)."""

from __future__ import annotations

import json

import pytest

from server.engineio._state import TRANSITIONS, Phase, PhaseError, Trigger, next_phase
from server.engineio.codec import OutgoingMessage, Packet, decode_packet
from server.engineio.config import EngineConfig
from server.engineio.protocol import PollStart, ProbeAction, SocketProtocol

CONFIG = EngineConfig(ping_interval=25, ping_timeout=20, max_buffered_packets=4)


def polling(now: float = 0.0) -> SocketProtocol:
    return SocketProtocol("sid1", "polling", CONFIG, now)


def websocket(now: float = 0.0) -> SocketProtocol:
    return SocketProtocol("sid1", "websocket", CONFIG, now)


# -- the transition table ----------------------------------------------------------------------------------


def test_every_transition_outside_the_table_is_an_error() -> None:
    for phase in Phase:
        for trigger in Trigger:
            if (phase, trigger) in TRANSITIONS:
                assert isinstance(next_phase(phase, trigger), Phase)
            else:
                with pytest.raises(PhaseError):
                    next_phase(phase, trigger)


def test_closed_is_terminal() -> None:
    assert not [key for key in TRANSITIONS if key[0] is Phase.CLOSED]


# -- handshake ---------------------------------------------------------------------------------------------


def test_open_packet_has_exactly_the_v4_fields_in_ms() -> None:
    packet = polling().open_packet("polling")
    assert packet.startswith("0")
    body = json.loads(packet[1:])
    assert list(body) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert body == {"sid": "sid1", "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000,
                    "maxPayload": 1_000_000}
    assert json.loads(websocket().open_packet("websocket")[1:])["upgrades"] == []
    no_upgrades = SocketProtocol("s", "polling", CONFIG.with_(allow_upgrades=False), 0)
    assert json.loads(no_upgrades.open_packet("polling")[1:])["upgrades"] == []


# -- messages ----------------------------------------------------------------------------------------------


def test_message_text_and_binary_are_handed_up_unchanged() -> None:
    proto = polling()
    assert proto.receive(decode_packet('4{"a":1}'), 1) == '{"a":1}'
    assert proto.receive(decode_packet("bAQID"), 1) == b"\x01\x02\x03"


def test_noop_open_upgrade_from_client_are_ignored() -> None:
    proto = polling()
    for raw in ("6", "0", "5"):
        assert proto.receive(decode_packet(raw), 1) is None
    assert proto.open


def test_packets_after_close_are_ignored() -> None:
    proto = polling()
    proto.receive(Packet(1), 1)
    assert proto.receive(Packet(4, "late"), 1) is None


# -- polling -----------------------------------------------------------------------------------------------


def test_get_waits_until_something_is_queued_then_takes_all_as_one_payload() -> None:
    proto = polling()
    assert proto.poll_begin() is PollStart.WAIT
    assert not proto.poll_ready()
    proto.queue("4a")
    proto.queue(b"\x01")
    proto.queue(OutgoingMessage("b"))
    assert proto.poll_ready()
    assert proto.poll_take() == "4a\x1ebAQ==\x1e4b"
    assert proto.buffered == 0
    assert proto.poll_begin() is PollStart.WAIT


def test_get_with_queued_packets_is_ready_at_once() -> None:
    proto = polling()
    proto.queue("4a")
    assert proto.poll_begin() is PollStart.READY


def test_second_concurrent_get_closes_and_pending_get_gets_close_packet() -> None:
    proto = polling()
    assert proto.poll_begin() is PollStart.WAIT
    assert proto.poll_begin() is PollStart.OVERLAP
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "transport error"
    assert proto.poll_ready()
    assert proto.poll_take() == "1"


def test_second_concurrent_post_closes() -> None:
    proto = polling()
    assert proto.post_begin()
    assert not proto.post_begin()
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "transport error"


def test_undecodable_packet_closes_at_once() -> None:
    proto = polling()
    proto.poll_begin()
    proto.decode_error()
    assert proto.close_reason == "transport error"
    assert proto.poll_take() == "1"


def test_client_close_while_get_pending_answers_noop() -> None:
    proto = polling()
    proto.poll_begin()
    assert proto.receive(Packet(1), 1) is None
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "client disconnect"
    assert proto.poll_take() == "6"


def test_queue_over_bound_closes_with_transport_error() -> None:
    proto = polling()
    for i in range(4):
        assert proto.queue(f"4{i}")
    assert not proto.queue("4x")
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "transport error"
    assert proto.buffered == 0


def test_server_close_on_polling_lingers_until_the_next_get_takes_the_close_packet() -> None:
    proto = polling()
    proto.queue("4last")
    assert proto.server_close(5)
    assert proto.phase is Phase.CLOSING
    assert not proto.open
    assert not proto.queue("4dropped")
    assert proto.poll_begin() is PollStart.READY
    assert proto.poll_take() == "4last\x1e1"
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "server disconnect"
    assert not proto.server_close(6)  # idempotent


def test_server_close_linger_ends_at_its_deadline() -> None:
    proto = polling()
    proto.server_close(5)
    assert proto.next_deadline() == 5 + CONFIG.close_linger
    proto.on_timer(5 + CONFIG.close_linger - 0.001)
    assert proto.phase is Phase.CLOSING
    proto.on_timer(5 + CONFIG.close_linger)
    assert proto.phase is Phase.CLOSED


def test_server_close_on_websocket_is_immediate() -> None:
    proto = websocket()
    proto.queue("4a")
    assert proto.server_close(1)
    assert proto.phase is Phase.CLOSED


def test_abandoned_get_closes_the_socket() -> None:
    proto = polling()
    proto.poll_begin()
    proto.poll_abandoned()
    assert proto.close_reason == "transport close"


# -- heartbeat ---------------------------------------------------------------------------------------------


def test_ping_after_interval_then_close_after_timeout_exactly() -> None:
    proto = polling(now=100)
    assert proto.next_deadline() == 125
    proto.on_timer(124.999)
    assert proto.buffered == 0
    proto.on_timer(125)
    assert proto.take_outbox() == ["2"]
    assert proto.next_deadline() == 145
    proto.on_timer(144.999)
    assert proto.open
    proto.on_timer(145)
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "ping timeout"


def test_pong_schedules_next_ping_one_interval_after_it() -> None:
    proto = websocket(now=0)
    proto.on_timer(25)
    proto.receive(Packet(3), 30)
    assert proto.next_deadline() == 55
    proto.on_timer(55)
    assert proto.take_outbox() == ["2", "2"]  # the first ping was never taken in this test
    proto.receive(Packet(3), 56)
    assert proto.next_deadline() == 81


def test_ping_from_client_is_an_error() -> None:
    proto = websocket()
    proto.receive(Packet(2), 1)
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "transport error"


# -- upgrade -----------------------------------------------------------------------------------------------


def test_upgrade_probe_then_upgrade() -> None:
    proto = polling()
    proto.queue("4buffered")
    proto.attach_probe(1)
    assert proto.phase is Phase.PROBING
    assert proto.upgrade_deadline == 1 + CONFIG.upgrade_timeout
    assert proto.receive_probe(Packet(2, "probe")) is ProbeAction.REPLY
    assert proto.phase is Phase.UPGRADING
    # The pending GET (and any new one) is answered 6; the buffer waits for the websocket.
    assert proto.poll_begin() is PollStart.READY
    assert proto.poll_take() == "6"
    assert proto.receive_probe(Packet(5)) is ProbeAction.UPGRADED
    assert proto.phase is Phase.WEBSOCKET
    assert proto.transport == "websocket"
    assert proto.take_outbox() == ["4buffered"]


def test_second_probe_and_probe_after_upgrade_are_refused() -> None:
    proto = polling()
    proto.attach_probe(0)
    with pytest.raises(PhaseError):
        proto.attach_probe(0)
    proto.receive_probe(Packet(5))
    with pytest.raises(PhaseError):
        proto.attach_probe(0)
    with pytest.raises(PhaseError):
        websocket().attach_probe(0)


def test_upgrade_disabled_refuses_probe() -> None:
    proto = SocketProtocol("s", "polling", CONFIG.with_(allow_upgrades=False), 0)
    with pytest.raises(PhaseError):
        proto.attach_probe(0)


@pytest.mark.parametrize("raw", ["4hello", "2", "3probe", "1"])
def test_other_packet_on_probe_drops_the_probe(raw: str) -> None:
    proto = polling()
    proto.attach_probe(0)
    assert proto.receive_probe(decode_packet(raw)) is ProbeAction.FAILED
    assert proto.phase is Phase.POLLING
    assert proto.open


def test_failed_probe_returns_to_polling_and_gets_flow_again() -> None:
    proto = polling()
    proto.attach_probe(0)
    proto.receive_probe(Packet(2, "probe"))
    proto.probe_failed()
    assert proto.phase is Phase.POLLING
    proto.queue("4x")
    assert proto.poll_begin() is PollStart.READY
    assert proto.poll_take() == "4x"
    proto.attach_probe(1)  # a new probe may come later
    assert proto.phase is Phase.PROBING
