"""The packet/payload codec against Node's parser rules and python-engineio's encoder, byte for byte."""

from __future__ import annotations

import base64

import pytest
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from hypothesis import given
from hypothesis import strategies as st

from server.engineio.codec import (
    MESSAGE,
    DecodeError,
    OutgoingMessage,
    Packet,
    decode_packet,
    decode_payload,
    encode_message,
    encode_packet,
    encode_payload,
)
from server.http.frames import encode_frame


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", Packet(0)),
        ("1", Packet(1)),
        ("2", Packet(2)),
        ("2probe", Packet(2, "probe")),
        ("3", Packet(3)),
        ("4hello", Packet(4, "hello")),
        ('4{"a":1}', Packet(4, '{"a":1}')),  # kept as text: the layer above parses it
        ("4true", Packet(4, "true")),
        ("4", Packet(4, "")),
        ("5", Packet(5)),
        ("6", Packet(6)),
        ("bAQIDBA==", Packet(MESSAGE, b"\x01\x02\x03\x04")),
        (b"\x01\x02", Packet(MESSAGE, b"\x01\x02")),
        (b"", Packet(MESSAGE, b"")),
    ],
)
def test_decode_packet(raw: str | bytes, expected: Packet) -> None:
    assert decode_packet(raw) == expected


@pytest.mark.parametrize("raw", ["", "7", "9hello", "abc", "x", "bA", "b!!!!", " 4"])
def test_undecodable_packets(raw: str) -> None:
    with pytest.raises(DecodeError):
        decode_packet(raw)


def test_payload_split_and_error_position() -> None:
    packets, error = decode_payload(b"4hello\x1ebAQIDBA==\x1e3")
    assert error is None
    assert packets == [Packet(4, "hello"), Packet(4, b"\x01\x02\x03\x04"), Packet(3)]
    packets, error = decode_payload(b"4a\x1eabc\x1e4b")
    assert packets == [Packet(4, "a")]
    assert isinstance(error, DecodeError)
    assert decode_payload(b"")[1] is not None  # an empty body is an empty packet: an error
    assert decode_payload(b"4\xff")[1] is not None  # not UTF-8


@given(st.text())
def test_text_message_encoding_matches_python_engineio(text: str) -> None:
    expected = eio_packet.Packet(eio_packet.MESSAGE, text).encode()
    assert encode_message(text) == expected
    assert OutgoingMessage(text).packet == expected
    assert OutgoingMessage(text).polling == eio_packet.Packet(eio_packet.MESSAGE, text).encode(b64=True)


@given(st.binary())
def test_binary_message_encoding_matches_python_engineio(data: bytes) -> None:
    assert encode_message(data) == eio_packet.Packet(eio_packet.MESSAGE, data).encode()
    message = OutgoingMessage(data)
    assert message.polling == eio_packet.Packet(eio_packet.MESSAGE, data).encode(b64=True)
    assert message.frame == encode_frame(data)


@pytest.mark.parametrize("kind", range(7))
def test_control_packet_encoding_matches_python_engineio(kind: int) -> None:
    assert encode_packet(kind) == eio_packet.Packet(kind).encode()
    assert encode_packet(kind, "probe") == eio_packet.Packet(kind, "probe").encode()


@given(st.lists(st.one_of(st.text(), st.binary()), min_size=1, max_size=8))
def test_payload_encoding_matches_python_engineio(items: list[str | bytes]) -> None:
    ours = encode_payload([OutgoingMessage(x) if i % 2 else encode_message(x) for i, x in enumerate(items)])
    library = eio_payload.Payload([eio_packet.Packet(eio_packet.MESSAGE, x) for x in items]).encode()
    assert ours == library


@given(st.lists(st.one_of(st.text(), st.binary()), min_size=1, max_size=8))
def test_payload_round_trip(items: list[str | bytes]) -> None:
    # \x1e inside a text message is ambiguous on the wire (the spec forbids it).
    items = [x.replace("\x1e", "") if isinstance(x, str) else x for x in items]
    body = encode_payload([encode_message(x) for x in items]).encode()
    packets, error = decode_payload(body)
    assert error is None
    assert [p.data for p in packets] == items


def test_outgoing_message_frame_is_computed_once() -> None:
    message = OutgoingMessage("hi")
    assert message.packet == "4hi"
    assert message.frame is message.frame
    assert message.frame == encode_frame("4hi")
    assert OutgoingMessage(b"\x00").polling == "b" + base64.b64encode(b"\x00").decode()
