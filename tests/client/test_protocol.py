"""Sans-IO tests of the client protocol, the backoff and the URL builder: bytes in, events out, no I/O."""

from __future__ import annotations

import random

import pytest

from server.client.backoff import Backoff
from server.client.protocol import (
    AckReceived,
    ClientProtocol,
    Closed,
    EventReceived,
    Heartbeat,
    NamespaceConnected,
    NamespaceDisconnected,
    NamespaceRefused,
    Opened,
    ProtocolError,
    encode_args,
)
from server.client.transport import build_url

OPEN = '0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000}'


def opened(*namespaces: str) -> ClientProtocol:
    proto = ClientProtocol()
    proto.receive(OPEN, now=10.0)
    for namespace in namespaces:
        proto.connect(namespace)
        prefix = "" if namespace == "/" else f"{namespace},"
        proto.receive(f'40{prefix}{{"sid":"s-{namespace}"}}', now=10.0)
    return proto


def test_open_packet_gives_sid_intervals_and_arms_heartbeat() -> None:
    proto = ClientProtocol()
    assert proto.receive(OPEN, now=10.0) == [Opened("abc", 0.3, 0.2, 1000)]
    assert proto.heartbeat.deadline == pytest.approx(10.5)


@pytest.mark.parametrize(
    "first", ["40", "2", '0{"upgrades":[]}', "0[1]", '0{"sid":"a","pingInterval":"x"}', "x"]
)
def test_anything_but_a_valid_open_first_is_a_protocol_error(first: str) -> None:
    with pytest.raises(ProtocolError):
        ClientProtocol().receive(first, now=0.0)


def test_ping_queues_pong_and_pushes_the_deadline_back() -> None:
    proto = opened()
    assert proto.receive("2", now=10.3) == []
    assert proto.data_to_send() == ["3"]
    assert proto.data_to_send() == []
    assert proto.heartbeat.deadline == pytest.approx(10.8)
    assert not proto.heartbeat.expired(10.79)
    assert proto.heartbeat.expired(10.8)


def test_heartbeat_deadline_is_interval_plus_timeout_after_each_ping() -> None:
    beat = Heartbeat()
    assert not beat.expired(1e9)  # not armed before the handshake
    beat.start(now=0.0, interval=25.0, timeout=20.0)
    assert beat.deadline == 45.0
    beat.pinged(now=30.0)
    assert beat.deadline == 75.0
    assert beat.expired(75.0)


def test_connect_encodes_auth_and_namespace() -> None:
    proto = opened()
    assert proto.connect("/", {"token": "t"}) == ['40{"token":"t"}']
    assert proto.connect("/admin") == ["40/admin,"]
    assert proto.connecting == {"/", "/admin"}


def test_connect_reply_and_refusal() -> None:
    proto = opened()
    proto.connect("/")
    proto.connect("/x")
    assert proto.receive('40{"sid":"s1"}', now=11.0) == [NamespaceConnected("/", "s1")]
    refused = proto.receive('44/x,{"message":"nope","data":{"msg_id":"E"}}', now=11.0)
    assert refused == [NamespaceRefused("/x", "nope", {"msg_id": "E"})]
    assert proto.connected == {"/": "s1"}
    assert not proto.connecting


def test_refusal_with_a_bare_string_as_python_socketio_sends_for_unknown_namespaces() -> None:
    proto = opened()
    proto.connect("/nope")
    assert proto.receive('44/nope,"Unable to connect"', now=0) == [
        NamespaceRefused("/nope", "Unable to connect", None)
    ]


def test_unrequested_connect_reply_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        opened().receive('40{"sid":"s"}', now=0)


def test_event_with_and_without_ack_id() -> None:
    proto = opened("/")
    assert proto.receive('42["hello",1,{"a":2}]', now=0) == [EventReceived("/", "hello", [1, {"a": 2}], None)]
    assert proto.receive('42/,7["call"]', now=0) == [EventReceived("/", "call", [], 7)]


def test_event_for_a_namespace_not_joined_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        opened("/").receive('42/other,["x"]', now=0)


@pytest.mark.parametrize("bad", ["42", "42[]", "42{}", "42[true]", "42[[1]]", "42[", "4x", "49[1]", "5", "4"])
def test_malformed_socketio_packets_are_protocol_errors(bad: str) -> None:
    with pytest.raises(ProtocolError):
        opened("/").receive(bad, now=0)


def test_ack_decodes_args() -> None:
    proto = opened("/chat")
    assert proto.receive('43/chat,12["ok",2]', now=0) == [AckReceived("/chat", 12, ["ok", 2])]


def test_binary_event_waits_for_its_attachments() -> None:
    proto = opened("/")
    head = '452-["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert proto.receive(head, now=0) == []
    assert proto.receive(b"\x00\x01", now=0) == []
    assert proto.receive(b"\x02", now=0) == [EventReceived("/", "file", [b"\x00\x01", b"\x02"], None)]


def test_binary_ack() -> None:
    proto = opened("/")
    proto.receive('461-5[{"_placeholder":true,"num":0}]', now=0)
    assert proto.receive(b"z", now=0) == [AckReceived("/", 5, [b"z"])]


def test_stray_binary_message_and_text_during_attachments_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        opened("/").receive(b"\x00", now=0)
    proto = opened("/")
    proto.receive('451-["f",{"_placeholder":true,"num":0}]', now=0)
    with pytest.raises(ProtocolError):
        proto.receive('42["x"]', now=0)


def test_server_namespace_disconnect_and_later_packets_for_it_are_dropped() -> None:
    proto = opened("/")
    assert proto.receive("41", now=0) == [NamespaceDisconnected("/")]
    assert proto.connected == {}
    assert proto.receive('42["late"]', now=0) == []


def test_engineio_close_then_nothing_more() -> None:
    proto = opened("/")
    assert proto.receive("1", now=0) == [Closed("transport close")]
    with pytest.raises(ProtocolError):
        proto.receive("2", now=0)


def test_noop_and_pong_are_ignored_upgrade_is_an_error() -> None:
    proto = opened("/")
    assert proto.receive("6", now=0) == []
    assert proto.receive("3", now=0) == []
    with pytest.raises(ProtocolError):
        proto.receive("5", now=0)


def test_emit_encodes_text_and_binary_events() -> None:
    proto = opened("/", "/chat")
    assert proto.emit("/", "msg", ["a", 1]) == ['42["msg","a",1]']
    assert proto.emit("/chat", "msg", [], ack_id=3) == ['42/chat,3["msg"]']
    assert proto.emit("/", "up", [b"\x01", {"b": b"\x02"}], ack_id=4) == [
        '452-4["up",{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]',
        b"\x01",
        b"\x02",
    ]


def test_ack_and_disconnect_encoding() -> None:
    proto = opened("/", "/chat")
    assert proto.ack("/", 9, ["x"]) == ['439["x"]']
    assert proto.ack("/chat", 2, []) == ["43/chat,2[]"]
    assert proto.ack("/", 1, [b"\x07"]) == ['461-1[{"_placeholder":true,"num":0}]', b"\x07"]
    assert proto.disconnect("/chat") == ["41/chat,"]
    assert "/chat" not in proto.connected


def test_sending_before_open_is_refused() -> None:
    with pytest.raises(ProtocolError):
        ClientProtocol().connect("/")


def test_encode_args_follows_python_socketio() -> None:
    assert encode_args(None) == []
    assert encode_args((1, 2)) == [1, 2]
    assert encode_args([1, 2]) == [[1, 2]]
    assert encode_args("x") == ["x"]


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    backoff = Backoff(0.5, 5.0, randomization_factor=0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.delay(10_000) == 5.0


def test_backoff_jitter_stays_within_the_factor_and_the_cap() -> None:
    backoff = Backoff(1.0, 3.0, randomization_factor=0.5, rng=random.Random(7))
    firsts = [backoff.delay(1) for _ in range(200)]
    assert all(0.5 <= d <= 1.5 for d in firsts)
    assert len(set(firsts)) > 100  # actually spread out
    assert all(d <= 3.0 for d in (backoff.delay(5) for _ in range(200)))


def test_build_url() -> None:
    assert build_url("http://h:1", "socket.io", {"a": 1, "b": None, "c": True}) == (
        "ws://h:1/socket.io/?EIO=4&transport=websocket&a=1&c=true"
    )
    assert build_url("https://h/prefix/", "/sio/") == "wss://h/prefix/sio/?EIO=4&transport=websocket"
    assert build_url("ws://h?x=1", "socket.io", {"latest_event_id": -1}) == (
        "ws://h/socket.io/?EIO=4&transport=websocket&x=1&latest_event_id=-1"
    )
    with pytest.raises(ValueError):
        build_url("ftp://h")
