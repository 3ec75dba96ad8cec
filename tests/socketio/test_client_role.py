"""The Socket.IO core in the client role, and a server core and a client core talking to each other: the
namespace handshake from both ends, events and acks in both directions, binary reassembly, and the rules
where the roles differ (who sends CONNECT, who picks ack ids, reserved names, namespaces just left)."""

from __future__ import annotations

import pytest
from socketio.packet import Packet

from server.engineio.protocol import Role
from server.socketio.codec import encode_event
from server.socketio.protocol import (
    AckReceived,
    ConnectRequested,
    EventReceived,
    NamespaceConnected,
    NamespaceLeft,
    NamespaceRefused,
    NamespaceState,
    ProtocolEvent,
    ProtocolViolation,
    SocketIOProtocol,
)


def deliver(messages: list[str | bytes], to: SocketIOProtocol) -> list[ProtocolEvent]:
    """Feed one side's output to the other; the events it gives."""
    events = [to.receive(message) for message in messages]
    return [event for event in events if event is not None]


def pair(*namespaces: str) -> tuple[SocketIOProtocol, SocketIOProtocol]:
    server, client = SocketIOProtocol(), SocketIOProtocol(role=Role.CLIENT)
    for namespace in namespaces:
        assert deliver(client.connect(namespace), server) == [ConnectRequested(namespace, None)]
        sid = f"sid-{namespace}"
        assert deliver(server.accept(namespace, sid), client) == [NamespaceConnected(namespace, sid)]
    return server, client


def test_connect_with_auth_from_both_ends() -> None:
    server, client = SocketIOProtocol(), SocketIOProtocol(role=Role.CLIENT)
    request = client.connect("/chat", {"token": "t"})
    assert request == ['0/chat,{"token":"t"}']
    assert client.state("/chat") is NamespaceState.CONNECTING
    assert deliver(request, server) == [ConnectRequested("/chat", {"token": "t"})]
    assert deliver(server.accept("/chat", "s1"), client) == [NamespaceConnected("/chat", "s1")]
    assert client.state("/chat") is server.state("/chat") is NamespaceState.CONNECTED


def test_a_refusal_reaches_the_client_with_its_data() -> None:
    server, client = SocketIOProtocol(), SocketIOProtocol(role=Role.CLIENT)
    deliver(client.connect("/x"), server)
    refusal = server.refuse("/x", "nope", {"msg_id": "E"})
    assert deliver(refusal, client) == [NamespaceRefused("/x", "nope", {"msg_id": "E"})]
    assert client.state("/x") is None


def test_each_role_sends_only_its_side_of_the_handshake() -> None:
    with pytest.raises(ValueError):
        SocketIOProtocol().connect("/")
    client = SocketIOProtocol(role=Role.CLIENT)
    client.connect("/")
    with pytest.raises(ValueError):
        client.accept("/", "sid")
    with pytest.raises(ValueError):
        client.refuse("/", "no")
    with pytest.raises(ValueError):
        client.connect("/")  # already connecting
    with pytest.raises(TypeError):
        client.connect("/y", ["not", "a", "mapping"])  # type: ignore[arg-type]


@pytest.mark.parametrize("message", ['0{"sid":"s"}', '4{"message":"no"}'])
def test_a_reply_to_a_connect_never_sent_is_a_violation(message: str) -> None:
    client = SocketIOProtocol(role=Role.CLIENT)
    assert isinstance(client.receive(message), ProtocolViolation)
    assert client.closed


def test_events_both_ways_and_binary_reassembly_from_either_end() -> None:
    server, client = pair("/")
    assert deliver(server.event("/", "hello", [1, {"a": b"\x01"}]), client) == [
        EventReceived("/", "hello", [1, {"a": b"\x01"}], None)
    ]
    upload = encode_event(Packet, "/", "up", [b"\x02", b"\x03"])
    assert len(upload) == 3
    assert deliver(upload, server) == [EventReceived("/", "up", [b"\x02", b"\x03"], None)]


def test_server_acks_are_tracked_by_the_servers_core_client_acks_by_the_caller() -> None:
    server, client = pair("/")
    token = object()
    (call,) = deliver(server.event("/", "question", [], ack_token=token), client)
    assert call == EventReceived("/", "question", [], 0)
    assert deliver(client.ack("/", 0, ["answer"]), server) == [AckReceived("/", 0, ["answer"], token)]
    # the client picks its own ids and gets every answer back, known or not
    (event,) = deliver(encode_event(Packet, "/", "call", [], 7), server)
    assert event == EventReceived("/", "call", [], 7)
    assert deliver(server.ack("/", 7, [b"\x09"]), client) == [AckReceived("/", 7, [b"\x09"])]
    assert client.pending_acks == 0


def test_a_client_takes_reserved_names_from_the_server_a_server_refuses_them() -> None:
    server, client = pair("/")
    reserved = server.event("/", "disconnect", [])
    assert deliver(reserved, client) == [EventReceived("/", "disconnect", [], None)]
    assert isinstance(server.receive('2["disconnect"]'), ProtocolViolation)


def test_a_client_drops_late_packets_for_a_namespace_it_left_a_server_does_not() -> None:
    server, client = pair("/", "/chat")
    late = server.event("/chat", "late", [])
    assert deliver(client.leave("/chat"), server) == [NamespaceLeft("/chat")]
    assert deliver(late, client) == []
    assert not client.closed
    assert isinstance(server.receive('2/chat,["late"]'), ProtocolViolation)


def test_the_server_leaving_reaches_the_client_and_later_packets_are_dropped() -> None:
    server, client = pair("/")
    assert deliver(server.leave("/"), client) == [NamespaceLeft("/")]
    assert client.state("/") is None
    assert client.receive('2["late"]') is None
    assert not client.closed
    deliver(client.connect("/"), server)  # joining again is allowed
    assert deliver(server.accept("/", "again"), client) == [NamespaceConnected("/", "again")]
