"""The Engine.IO socket core in the client role: the handshake, answering pings, the client's heartbeat, and
the two roles talking to each other through the same codec (the server's packets in, the client's out)."""

from __future__ import annotations

import json

import pytest

from server.engineio._state import CLIENT_TRANSITIONS, Phase, PhaseError, Role, Trigger, next_phase
from server.engineio.codec import DecodeError, Handshake, Packet, decode_handshake, decode_packet
from server.engineio.config import EngineConfig
from server.engineio.protocol import SocketProtocol

CONFIG = EngineConfig(ping_interval=25, ping_timeout=20)
OPEN = '0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000}'


def opened(now: float = 10.0) -> SocketProtocol:
    proto = SocketProtocol.client()
    assert proto.receive(decode_packet(OPEN), now) is None
    return proto


def test_every_client_transition_outside_its_table_is_an_error() -> None:
    for phase in Phase:
        for trigger in Trigger:
            if (phase, trigger) in CLIENT_TRANSITIONS:
                assert isinstance(next_phase(phase, trigger, Role.CLIENT), Phase)
            else:
                with pytest.raises(PhaseError):
                    next_phase(phase, trigger, Role.CLIENT)
    assert not [key for key in CLIENT_TRANSITIONS if key[0] is Phase.CLOSED]


def test_the_roles_tables_differ_where_the_protocol_does() -> None:
    # only a client waits for the server's OPEN packet; only a server upgrades or lingers
    with pytest.raises(PhaseError):
        next_phase(Phase.OPENING, Trigger.HANDSHAKE)
    with pytest.raises(PhaseError):
        next_phase(Phase.POLLING, Trigger.PROBE_ATTACH, Role.CLIENT)


def test_a_client_starts_opening_and_cannot_send() -> None:
    proto = SocketProtocol.client()
    assert proto.role is Role.CLIENT
    assert proto.phase is Phase.OPENING
    assert not proto.open
    assert not proto.queue("4x")
    assert proto.next_deadline() == float("inf")
    with pytest.raises(ValueError):
        SocketProtocol("", "polling", CONFIG, 0, role=Role.CLIENT)


def test_the_open_packet_is_the_handshake_and_arms_the_heartbeat() -> None:
    proto = opened(now=10.0)
    assert proto.phase is Phase.WEBSOCKET
    assert proto.open
    assert proto.sid == "abc"
    assert proto.handshake == Handshake("abc", 0.3, 0.2, 1000, ("websocket",))
    assert proto.next_deadline() == pytest.approx(10.5)
    assert proto.error is None


@pytest.mark.parametrize(
    "first", ["40", "2", "4x", '0{"upgrades":[]}', "0[1]", "0x", '0{"sid":"a","pingInterval":"x"}']
)
def test_anything_but_a_valid_open_first_closes_with_a_reason(first: str) -> None:
    proto = SocketProtocol.client()
    assert proto.receive(decode_packet(first), 0) is None
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "transport error"
    assert proto.error


def test_a_ping_is_answered_with_its_data_and_pushes_the_deadline_back() -> None:
    proto = opened(now=10.0)
    assert proto.receive(Packet(2), 10.3) is None
    assert proto.receive(Packet(2, "x"), 10.3) is None
    assert proto.take_outbox() == ["3", "3x"]
    assert proto.next_deadline() == pytest.approx(10.8)


def test_no_ping_in_time_is_a_ping_timeout() -> None:
    proto = opened(now=10.0)
    proto.on_timer(10.49)
    assert proto.open
    proto.on_timer(10.5)
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "ping timeout"


def test_messages_go_up_pongs_and_noops_mean_nothing() -> None:
    proto = opened()
    assert proto.receive(decode_packet('4["x"]'), 10) == '["x"]'
    assert proto.receive(decode_packet(b"\x01"), 10) == b"\x01"
    assert proto.receive(Packet(3), 10) is None
    assert proto.receive(Packet(6), 10) is None
    assert proto.open


def test_the_servers_close_packet_is_a_transport_close() -> None:
    proto = opened()
    proto.receive(Packet(1), 10)
    assert proto.phase is Phase.CLOSED
    assert proto.close_reason == "transport close"
    assert proto.error is None


@pytest.mark.parametrize("raw", [OPEN, "5"])
def test_a_second_open_or_an_upgrade_on_the_websocket_is_an_error(raw: str) -> None:
    proto = opened()
    proto.receive(decode_packet(raw), 10)
    assert proto.close_reason == "transport error"
    assert proto.error


def test_a_server_and_a_client_socket_talk_through_the_same_codec() -> None:
    server = SocketProtocol("sid1", "websocket", CONFIG, 0.0)
    client = SocketProtocol.client()
    client.receive(decode_packet(server.open_packet("websocket")), 0.0)
    assert client.handshake == Handshake("sid1", 25.0, 20.0, CONFIG.max_payload)
    assert client.next_deadline() == 45.0
    server.on_timer(25.0)  # the server pings...
    for packet in server.take_outbox():
        assert isinstance(packet, str)
        client.receive(decode_packet(packet), 25.0)
    assert client.next_deadline() == 70.0
    for packet in client.take_outbox():  # ...the client answers...
        assert isinstance(packet, str)
        server.receive(decode_packet(packet), 25.1)
    assert server.next_deadline() == pytest.approx(50.1)  # ...and the server's next ping is due
    server.on_timer(50.1)
    server.on_timer(70.0)
    assert server.open and client.open


def test_handshake_encoding_is_the_servers_open_packet_and_decodes_back() -> None:
    handshake = Handshake("s", 25.0, 20.0, 1_000_000, ("websocket",))
    text = handshake.encode()
    assert json.loads(text[1:]) == {
        "sid": "s", "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000,
        "maxPayload": 1000000,
    }
    assert decode_handshake(text[1:]) == handshake
    assert decode_handshake('{"sid":"s","pingInterval":1,"pingTimeout":2}') == Handshake("s", 0.001, 0.002, 0)
    for bad in ("[]", "{", '{"sid":""}', '{"sid":"s","pingInterval":-1,"pingTimeout":1}',
                '{"sid":"s","pingInterval":true,"pingTimeout":1}'):
        with pytest.raises(DecodeError):
            decode_handshake(bad)
