"""The fast EVENT/ACK encoders produce exactly python-socketio's bytes; decoding errors are ValueError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from socketio.msgpack_packet import MsgPackPacket
from socketio.packet import ACK, EVENT, Packet

from server.socketio import codec

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)
with_bytes = st.recursive(
    st.none() | st.integers() | st.text() | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=10,
)
namespaces = st.sampled_from(["/", "/custom", "/a/b", "/ünï"])
ack_ids = st.none() | st.integers(min_value=0, max_value=2**31)
event_names = st.text(min_size=1) | st.integers()


def library(packet_type: int, namespace: str, data: Any, ack_id: int | None) -> list[str | bytes]:
    encoded = Packet(packet_type, data=data, namespace=namespace, id=ack_id).encode()
    return encoded if isinstance(encoded, list) else [encoded]


@given(namespaces, event_names, st.lists(json_values, max_size=4), ack_ids)
def test_fast_event_is_byte_for_byte_the_library(namespace: str, event: Any, args: list[Any],
                                                 ack_id: int | None) -> None:
    assert codec.encode_event(Packet, namespace, event, args, ack_id) == library(
        EVENT, namespace, [event, *args], ack_id
    )


@given(namespaces, st.lists(json_values, max_size=4), st.integers(min_value=0, max_value=10**6))
def test_fast_ack_is_byte_for_byte_the_library(namespace: str, args: list[Any], ack_id: int) -> None:
    assert codec.encode_ack(Packet, namespace, ack_id, args) == library(ACK, namespace, args, ack_id)


@given(namespaces, st.text(min_size=1), st.lists(with_bytes, max_size=3))
def test_binary_falls_back_to_the_library(namespace: str, event: str, args: list[Any]) -> None:
    expected = library(EVENT, namespace, [event, *args], None)
    assert codec.encode_event(Packet, namespace, event, args) == expected


@given(namespaces, st.text(min_size=1), json_values)
def test_preencoded_json_decodes_to_the_same_packet(namespace: str, event: str, value: Any) -> None:
    # The spliced text may differ in escaping (ensure_ascii=False), never in meaning.
    json_text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    (spliced,) = codec.encode_event_json(namespace, event, json_text)
    decoded = Packet(encoded_packet=spliced)
    assert (decoded.packet_type, decoded.namespace or "/", decoded.data) == (EVENT, namespace, [event, value])
    (reference,) = library(EVENT, namespace, [event, value], None)
    assert Packet(encoded_packet=reference).data == decoded.data


def test_preencoded_ascii_json_is_byte_for_byte_the_library() -> None:
    payload = {"id": 3, "message": "hi", "args": {"x": [1, 2.5, None]}}
    text = json.dumps(payload, separators=(",", ":"))
    assert codec.encode_event_json("/", "oh_event", text) == library(EVENT, "/", ["oh_event", payload], None)


def test_unserializable_data_raises_like_the_library() -> None:
    with pytest.raises(TypeError):
        codec.encode_event(Packet, "/", "e", [object()])


def test_msgpack_events_are_single_binary_messages() -> None:
    (message,) = codec.encode_event(MsgPackPacket, "/x", "e", [b"\x00", 1], 4)
    assert message == MsgPackPacket(EVENT, data=["e", b"\x00", 1], namespace="/x", id=4).encode()


@pytest.mark.parametrize(
    ("data", "expected"), [(None, []), ((1, 2), [1, 2]), ([1, 2], [[1, 2]]), ("x", ["x"]), ((), [])]
)
def test_args_from_data_follows_python_socketio(data: Any, expected: list[Any]) -> None:
    assert codec.args_from_data(data) == expected


@pytest.mark.parametrize("message", ["", "2[", "x", "2/bad\x00,[", b"2[]"])
def test_decode_errors_are_value_errors(message: str | bytes) -> None:
    with pytest.raises(ValueError):
        codec.decode(Packet, message)


def test_serializer_choice() -> None:
    assert codec.packet_class_for("default") is Packet
    assert codec.packet_class_for("msgpack") is MsgPackPacket
    with pytest.raises(ValueError):
        codec.packet_class_for("yaml")  # type: ignore[arg-type]


def _library_decode(message: str) -> tuple[str, Any]:
    try:
        pkt = Packet(encoded_packet=message)
    except Exception as exc:
        return ("error", type(exc).__name__)
    return ("ok", (pkt.packet_type, pkt.namespace, pkt.id, pkt.data, pkt.attachment_count))


def _fast_decode(message: str) -> tuple[str, Any]:
    try:
        pkt = codec._decode_text(message)
    except Exception as exc:
        return ("error", type(exc).__name__)
    return ("ok", (pkt.packet_type, pkt.namespace, pkt.id, pkt.data, pkt.attachment_count))


packet_texts = st.one_of(
    st.text(min_size=1),
    st.builds(
        lambda t, att, ns, ack, body: f"{t}{att}{ns}{ack}{body}",
        st.sampled_from("0123456789"),
        st.sampled_from(["", "1-", "2-", "01-", "12345678901-", "-"]),
        st.sampled_from(["", "/", "/a,", "/a", "/x?y=1,", "/ü,"]),
        st.sampled_from(["", "0", "7", "12", "1" * 101, "-1"]),
        st.one_of(st.just(""), json_values.map(json.dumps), st.text(max_size=8), st.just("\ufeff[1]")),
    ),
)


@given(packet_texts)
def test_fast_text_decoder_matches_the_library(message: str) -> None:
    assert _fast_decode(message) == _library_decode(message)
