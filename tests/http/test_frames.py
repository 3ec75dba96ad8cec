"""Sans-IO framing: our encoder against wsproto byte for byte, our parser against wsproto's client frames."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from server.http import frames
from server.http.frames import Close, FrameError, FrameParser, encode_close, encode_frame

BOUNDARY_SIZES = [0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 65537]


def wsproto_server_frame(data: str | bytes) -> bytes:
    event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
    return Connection(ConnectionType.SERVER).send(event)


def client_frames(data: str | bytes, pieces: int) -> bytes:
    """``data`` as one message split into ``pieces`` masked frames (continuations), as wsproto sends it."""
    client = Connection(ConnectionType.CLIENT)
    step = max(1, -(-len(data) // pieces)) if data else 1
    chunks = [data[i : i + step] for i in range(0, len(data), step)] or [data]
    out = b""
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        event = TextMessage(data=chunk, message_finished=last) if isinstance(chunk, str) else BytesMessage(
            data=chunk, message_finished=last
        )
        out += client.send(event)
    return out


def masked(first: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    n = len(payload)
    if n <= 125:
        head = bytes((first, 0x80 | n))
    elif n <= 0xFFFF:
        head = bytes((first, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((first, 0x80 | 127)) + struct.pack("!Q", n)
    return head + mask + frames.unmask(payload, mask)


def drain(parser: FrameParser) -> list[object]:
    events: list[object] = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    return events


@settings(max_examples=200, deadline=None)
@given(size=st.sampled_from(BOUNDARY_SIZES), as_text=st.booleans(), fill=st.integers(0, 255))
def test_encode_frame_matches_wsproto_at_length_boundaries(size: int, as_text: bool, fill: int) -> None:
    data: str | bytes = chr(0x20 + fill % 90) * size if as_text else bytes([fill]) * size
    assert encode_frame(data) == wsproto_server_frame(data)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_encode_frame_matches_wsproto_for_any_message(data: str | bytes) -> None:
    assert encode_frame(data) == wsproto_server_frame(data)


@pytest.mark.parametrize("text", ["", "bye", "é" * 100])
def test_encode_close_matches_wsproto(text: str) -> None:
    expected = Connection(ConnectionType.SERVER).send(CloseConnection(code=1001, reason=text))
    assert encode_close(1001, text) == expected


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=200)), min_size=1, max_size=6),
    pieces=st.integers(1, 4),
    cut=st.integers(1, 50),
)
def test_parser_reassembles_wsproto_client_frames_fed_in_any_chunks(
    messages: list[str | bytes], pieces: int, cut: int
) -> None:
    wire = b"".join(client_frames(m, pieces) for m in messages)
    wire += Connection(ConnectionType.CLIENT).send(Ping(payload=b"hb"))
    parser = FrameParser(max_message_size=10_000)
    events: list[object] = []
    for i in range(0, len(wire), cut):
        parser.feed(wire[i : i + cut])
        events.extend(drain(parser))
    assert events == [*messages, frames.Ping(b"hb")]
    assert parser.buffered == 0


def test_large_message_over_two_byte_and_eight_byte_lengths() -> None:
    parser = FrameParser(max_message_size=1 << 20)
    for size in (126, 65535, 65536, 300_000):
        parser.feed(client_frames(b"z" * size, 1))
        assert drain(parser) == [b"z" * size]


def test_oversized_message_is_rejected_from_its_header_alone() -> None:
    parser = FrameParser(max_message_size=1000)
    parser.feed(bytes((0x82, 0x80 | 127)) + struct.pack("!Q", 10**9))  # no payload sent at all
    with pytest.raises(FrameError) as info:
        parser.next_event()
    assert info.value.code == frames.CLOSE_TOO_BIG


def test_oversized_fragmented_message_is_rejected() -> None:
    parser = FrameParser(max_message_size=1000)
    parser.feed(masked(0x02, b"a" * 600) + masked(0x00, b"b" * 600))
    with pytest.raises(FrameError) as info:
        drain(parser)
    assert info.value.code == frames.CLOSE_TOO_BIG


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (bytes((0x81, 0x05)) + b"hello", 1002),  # not masked
        (masked(0xC1, b"x"), 1002),  # RSV1 without a negotiated extension
        (masked(0x83, b"x"), 1002),  # reserved data opcode
        (masked(0x8B, b""), 1002),  # reserved control opcode
        (masked(0x80, b"x"), 1002),  # continuation without a message
        (masked(0x01, b"a") + masked(0x81, b"b"), 1002),  # new message inside a fragmented one
        (masked(0x09, b"p"), 1002),  # fragmented ping
        (masked(0x89, b"p" * 126), 1002),  # control frame too long
        (masked(0x81, b"\xff\xfe"), 1007),  # invalid UTF-8 text
        (masked(0x88, b"\x03"), 1002),  # close with a 1-byte payload
        (masked(0x88, struct.pack("!H", 999)), 1002),  # close code out of range
        (masked(0x88, struct.pack("!H", 1006)), 1002),  # local-only close code
        (masked(0x88, struct.pack("!H", 2000)), 1002),  # reserved close code
        (masked(0x88, struct.pack("!H", 1000) + b"\xff"), 1007),  # close reason not UTF-8
    ],
)
def test_protocol_violations_raise_with_the_close_code(wire: bytes, code: int) -> None:
    parser = FrameParser(max_message_size=1000)
    parser.feed(wire)
    with pytest.raises(FrameError) as info:
        drain(parser)
    assert info.value.code == code


def test_close_frames_are_parsed_and_end_the_stream() -> None:
    parser = FrameParser(max_message_size=1000)
    parser.feed(masked(0x88, struct.pack("!H", 4000) + "bye é".encode()) + masked(0x81, b"after"))
    assert drain(parser) == [Close(4000, "bye é")]
    empty = FrameParser(max_message_size=1000)
    empty.feed(masked(0x88, b""))
    assert drain(empty) == [Close(frames.CLOSE_NO_STATUS, "")]


def test_control_frames_interleave_with_a_fragmented_message() -> None:
    parser = FrameParser(max_message_size=1000)
    parser.feed(masked(0x01, b"he") + masked(0x89, b"1") + masked(0x8A, b"2") + masked(0x80, b"llo"))
    assert drain(parser) == [frames.Ping(b"1"), frames.Pong(b"2"), "hello"]
