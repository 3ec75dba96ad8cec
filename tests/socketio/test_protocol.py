"""The sans-IO Socket.IO core against every Socket.IO row of PROTOCOL.md: messages in, events out.

Messages are Engine.IO MESSAGE payloads (the engine strips its leading "4"): "0" is CONNECT, "2" EVENT...
"""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio.msgpack_packet import MsgPackPacket

from server.socketio.errors import AckLimitError
from server.socketio.protocol import (
    RESERVED_EVENTS,
    AckReceived,
    ConnectRequested,
    EventReceived,
    NamespaceLeft,
    NamespaceState,
    ProtocolViolation,
    SocketIOProtocol,
)


def joined(*namespaces: str, **options: object) -> SocketIOProtocol:
    proto = SocketIOProtocol(**options)  # type: ignore[arg-type]
    for namespace in namespaces:
        head = "0" if namespace == "/" else f"0{namespace},"
        assert isinstance(proto.receive(head), ConnectRequested)
        proto.accept(namespace, "sid-" + namespace)
    return proto


# -- namespace connect ------------------------------------------------------------------------------------


def test_connect_main_namespace_without_auth() -> None:
    proto = SocketIOProtocol()
    assert proto.receive("0") == ConnectRequested("/", None)
    assert proto.state("/") is NamespaceState.CONNECTING
    reply = proto.accept("/", "abc")
    assert reply == ['0{"sid":"abc"}']
    assert proto.state("/") is NamespaceState.CONNECTED


def test_connect_with_auth_object() -> None:
    proto = SocketIOProtocol()
    assert proto.receive('0{"token":"123"}') == ConnectRequested("/", {"token": "123"})


@pytest.mark.parametrize("message", ["0/custom,", "0/custom"])
def test_connect_custom_namespace_with_or_without_comma(message: str) -> None:
    proto = SocketIOProtocol()
    assert proto.receive(message) == ConnectRequested("/custom", None)
    assert proto.accept("/custom", "xyz") == ['0/custom,{"sid":"xyz"}']


def test_connect_custom_namespace_with_auth() -> None:
    proto = SocketIOProtocol()
    assert proto.receive('0/custom,{"token":"abc"}') == ConnectRequested("/custom", {"token": "abc"})


@pytest.mark.parametrize("auth", ['"text"', "[1,2]", "true", "null1"])
def test_connect_with_auth_that_is_not_an_object_closes(auth: str) -> None:
    proto = SocketIOProtocol()
    assert isinstance(proto.receive("0/custom," + auth), ProtocolViolation)
    assert proto.closed


def test_accept_carries_pid_when_recovery_is_on() -> None:
    proto = SocketIOProtocol()
    proto.receive("0")
    assert json.loads(proto.accept("/", "s1", pid="p1")[0][1:]) == {"sid": "s1", "pid": "p1"}


def test_refusal_is_connect_error_with_message_and_data() -> None:
    proto = SocketIOProtocol()
    proto.receive("0/admin,")
    out = proto.refuse("/admin", "not authorized", {"msg_id": "AUTH$FAIL"})
    assert out == ['4/admin,{"message":"not authorized","data":{"msg_id":"AUTH$FAIL"}}']
    assert proto.state("/admin") is None


def test_unknown_namespace_refusal_has_the_reference_bytes() -> None:
    proto = SocketIOProtocol()
    proto.receive("0/random")
    assert proto.refuse("/random", "Invalid namespace") == ['4/random,{"message":"Invalid namespace"}']


def test_refusal_with_unserializable_data_still_refuses() -> None:
    proto = SocketIOProtocol()
    proto.receive("0")
    assert proto.refuse("/", "no", object()) == ['4{"message":"no"}']


def test_refused_namespace_may_be_connected_again() -> None:
    proto = SocketIOProtocol()
    proto.receive("0")
    proto.refuse("/", "no")
    assert proto.receive("0") == ConnectRequested("/", None)


def test_duplicate_connect_closes() -> None:
    proto = joined("/")
    assert isinstance(proto.receive("0"), ProtocolViolation)


def test_connect_while_connecting_closes() -> None:
    proto = SocketIOProtocol()
    proto.receive("0")
    assert isinstance(proto.receive("0"), ProtocolViolation)


def test_accept_of_a_namespace_not_connecting_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        SocketIOProtocol().accept("/", "sid")


# -- connect timeout --------------------------------------------------------------------------------------


def test_connect_timeout_applies_when_nothing_is_joined() -> None:
    proto = SocketIOProtocol(connect_deadline=45.0)
    assert proto.connect_deadline == 45.0
    assert proto.connect_timed_out()


def test_connect_timeout_spares_a_connection_that_is_connecting_or_connected() -> None:
    proto = SocketIOProtocol()
    proto.receive("0")
    assert not proto.connect_timed_out()
    proto.accept("/", "s")
    assert not proto.connect_timed_out()


def test_connect_timeout_applies_after_a_refusal() -> None:
    proto = SocketIOProtocol()
    proto.receive("0/random")
    proto.refuse("/random", "Invalid namespace")
    assert proto.connect_timed_out()


def test_connect_timeout_applies_after_leaving_the_last_namespace() -> None:
    # The reference server checks at connectTimeout whether any namespace is joined.
    proto = joined("/")
    assert proto.receive("1") == NamespaceLeft("/")
    assert proto.connect_timed_out()


# -- events -----------------------------------------------------------------------------------------------


def test_event_with_arguments() -> None:
    proto = joined("/")
    assert proto.receive('2["message",1,"2",{"3":[true]}]') == EventReceived(
        "/", "message", [1, "2", {"3": [True]}], None
    )


def test_event_with_ack_id_in_custom_namespace() -> None:
    proto = joined("/custom")
    assert proto.receive('2/custom,456["message-with-ack",1]') == EventReceived(
        "/custom", "message-with-ack", [1], 456
    )


def test_event_named_by_a_number() -> None:
    proto = joined("/")
    assert proto.receive("2[7,1]") == EventReceived("/", 7, [1], None)


@pytest.mark.parametrize(
    "message",
    ["2{}", "2[]", "2", "2[true]", "2[null]", "2[{}]", "2[[1]]", '2"text"'],
)
def test_invalid_event_payload_closes(message: str) -> None:
    proto = joined("/")
    assert isinstance(proto.receive(message), ProtocolViolation)
    assert proto.closed


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_reserved_event_name_closes(name: str) -> None:
    proto = joined("/")
    assert isinstance(proto.receive(f'2["{name}"]'), ProtocolViolation)


def test_invalid_ack_id_closes() -> None:
    proto = joined("/")
    assert isinstance(proto.receive('2abc["message-with-ack",1,"2",{"3":[false]}]'), ProtocolViolation)


def test_server_event_encoding() -> None:
    proto = joined("/", "/custom")
    assert proto.event("/", "auth", [{}]) == ['2["auth",{}]']
    assert proto.event("/custom", "auth", [{"token": "abc"}]) == ['2/custom,["auth",{"token":"abc"}]']


# -- acks -------------------------------------------------------------------------------------------------


def test_ack_reply_to_a_client_event() -> None:
    proto = joined("/", "/custom")
    assert proto.ack("/", 456, [1, "2", {"3": [False]}]) == ['3456[1,"2",{"3":[false]}]']
    assert proto.ack("/custom", 1, []) == ["3/custom,1[]"]


def test_server_initiated_ack_round_trip() -> None:
    proto = joined("/custom")
    token = object()
    out = proto.event("/custom", "question", [1], ack_token=token)
    assert out == ['2/custom,0["question",1]']
    assert proto.pending_acks == 1
    assert proto.receive('3/custom,0["answer"]') == AckReceived("/custom", 0, ["answer"], token)
    assert proto.pending_acks == 0
    assert proto.receive('3/custom,0["again"]') is None  # answered already: ignored


def test_unknown_ack_id_is_ignored() -> None:
    proto = joined("/")
    assert proto.receive("399[]") is None
    assert not proto.closed


@pytest.mark.parametrize("message", ['3["no id"]', "31{}", "31"])
def test_ack_without_id_or_array_closes(message: str) -> None:
    proto = joined("/")
    proto.register_ack("/", object())
    assert isinstance(proto.receive(message), ProtocolViolation)


def test_pending_acks_are_bounded() -> None:
    proto = joined("/", max_pending_acks=2)
    proto.event("/", "a", [], ack_token=1)
    proto.event("/", "b", [], ack_token=2)
    with pytest.raises(AckLimitError):
        proto.event("/", "c", [], ack_token=3)
    assert proto.forget_ack("/", 0) == 1
    proto.event("/", "c", [], ack_token=3)


def test_drain_acks_returns_the_tokens_of_one_namespace() -> None:
    proto = joined("/", "/x")
    proto.register_ack("/", "a")
    proto.register_ack("/x", "b")
    assert proto.drain_acks("/x") == ["b"]
    assert proto.drain_acks() == ["a"]
    assert proto.pending_acks == 0


# -- leaving, and closing the whole connection ------------------------------------------------------------


def test_disconnect_leaves_one_namespace_only() -> None:
    proto = joined("/", "/custom")
    assert proto.receive("1/custom,") == NamespaceLeft("/custom")
    assert proto.receive('2["message","still here"]') == EventReceived("/", "message", ["still here"], None)
    assert isinstance(proto.receive('2/custom,["message"]'), ProtocolViolation)


def test_server_disconnect_packet() -> None:
    proto = joined("/", "/custom")
    assert proto.leave("/custom") == ["1/custom,"]
    assert proto.leave("/") == ["1"]
    assert proto.leave("/") == []


@pytest.mark.parametrize(
    "message",
    [
        "abc",  # unknown packet type (the suite sends engine message "4abc")
        '4{"message":"x"}',  # CONNECT_ERROR from the client
        "7",  # unknown packet types
        "9[]",
        "x",
        "",
        '2/other,["message"]',  # namespace not joined
        '3/other,1["x"]',
        "1/other,",
        '51-/other,["m",{"_placeholder":true,"num":0}]',
        '5["m",{"_placeholder":true,"num":0}]',  # a placeholder and no attachment declared
        "2[",  # bad JSON
        '21-["message"]',  # attachments on a plain EVENT
    ],
)
def test_violations_close_the_whole_connection(message: str) -> None:
    proto = joined("/")
    assert isinstance(proto.receive(message), ProtocolViolation)
    assert proto.closed
    assert proto.receive('2["message"]') is None  # nothing more is accepted


def test_event_for_a_namespace_still_connecting_closes() -> None:
    proto = SocketIOProtocol()
    proto.receive("0")
    assert isinstance(proto.receive('2["early"]'), ProtocolViolation)


def test_binary_message_without_a_pending_binary_packet_closes() -> None:
    proto = joined("/")
    assert isinstance(proto.receive(b"\x01\x02"), ProtocolViolation)


# -- binary -----------------------------------------------------------------------------------------------


def test_binary_event_reassembly() -> None:
    proto = joined("/")
    header = '52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert proto.receive(header) is None
    assert proto.receive(b"\x01\x02\x03") is None
    event = proto.receive(b"\x04\x05\x06")
    assert event == EventReceived("/", "message", [b"\x01\x02\x03", b"\x04\x05\x06"], None)


def test_binary_ack_reassembly() -> None:
    proto = joined("/custom")
    proto.register_ack("/custom", "token")
    assert proto.receive('61-/custom,0[{"_placeholder":true,"num":0}]') is None
    assert proto.receive(b"\xff") == AckReceived("/custom", 0, [b"\xff"], "token")


def test_binary_replies_reencode_the_same() -> None:
    proto = joined("/")
    out = proto.ack("/", 789, [b"\x01\x02\x03", b"\x04\x05\x06"])
    assert out == [
        '62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        b"\x01\x02\x03",
        b"\x04\x05\x06",
    ]
    out = proto.event("/", "message-back", [b"\x01", {"nested": b"\x02"}])
    assert out == [
        '52-["message-back",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]',
        b"\x01",
        b"\x02",
    ]


def test_too_many_attachments_closes() -> None:
    proto = joined("/", max_attachments=2)
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(3))
    assert isinstance(proto.receive(f'53-["m",{placeholders}]'), ProtocolViolation)


def test_attachments_too_large_close() -> None:
    proto = joined("/", max_binary_size=4)
    proto.receive('52-["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert proto.receive(b"abc") is None
    assert isinstance(proto.receive(b"de"), ProtocolViolation)


def test_text_while_attachments_are_expected_closes() -> None:
    proto = joined("/")
    proto.receive('51-["m",{"_placeholder":true,"num":0}]')
    assert isinstance(proto.receive('2["m"]'), ProtocolViolation)


def test_placeholder_out_of_range_closes() -> None:
    proto = joined("/")
    proto.receive('51-["m",{"_placeholder":true,"num":5}]')
    assert isinstance(proto.receive(b"x"), ProtocolViolation)


def test_binary_event_with_reserved_name_closes_after_reassembly() -> None:
    proto = joined("/")
    proto.receive('51-["disconnect",{"_placeholder":true,"num":0}]')
    assert isinstance(proto.receive(b"x"), ProtocolViolation)


# -- msgpack ----------------------------------------------------------------------------------------------


def mp(**packet: object) -> bytes:
    return msgpack.dumps(packet)


def test_msgpack_connect_event_and_ack() -> None:
    proto = SocketIOProtocol(MsgPackPacket)
    assert proto.receive(mp(type=0, nsp="/", data={"token": "t"})) == ConnectRequested("/", {"token": "t"})
    (reply,) = proto.accept("/", "s1")
    assert msgpack.loads(reply) == {"type": 0, "nsp": "/", "data": {"sid": "s1"}}
    event = proto.receive(mp(type=2, nsp="/", data=["blob", b"\x00\x01"], id=3))
    assert event == EventReceived("/", "blob", [b"\x00\x01"], 3)
    (ack,) = proto.ack("/", 3, [b"\x02"])
    assert msgpack.loads(ack) == {"type": 3, "nsp": "/", "data": [b"\x02"], "id": 3}


def test_msgpack_rejects_text_and_garbage() -> None:
    proto = SocketIOProtocol(MsgPackPacket)
    assert isinstance(proto.receive("0"), ProtocolViolation)
    proto = SocketIOProtocol(MsgPackPacket)
    assert isinstance(proto.receive(b"\xc1"), ProtocolViolation)
    proto = SocketIOProtocol(MsgPackPacket)
    assert isinstance(proto.receive(mp(type=0)), ProtocolViolation)  # no nsp


# -- fuzz -------------------------------------------------------------------------------------------------

fragments = st.sampled_from(
    ["0", "1", "2", "3", "4", "5", "6", "/custom", ",", "1-", "2-", "12", '["m"', "]", "{}", '"x"', "[",
     "null", "-", "?", '{"_placeholder":true,"num":0}']
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.lists(fragments, max_size=8).map("".join), st.text(max_size=12),
                          st.binary(max_size=8)), max_size=8))
def test_any_input_yields_events_or_a_violation_never_an_exception(messages: list[str | bytes]) -> None:
    proto = joined("/", "/custom", max_attachments=3)
    proto.register_ack("/", "token")
    for message in messages:
        result = proto.receive(message)
        assert result is None or isinstance(
            result, ConnectRequested | EventReceived | AckReceived | NamespaceLeft | ProtocolViolation
        )
        if isinstance(result, ProtocolViolation):
            assert proto.closed
        if isinstance(result, ConnectRequested):
            proto.accept(result.namespace, "s")
