"""Engine.IO v4 packet and payload codec, sans-IO, for both ends of a connection.

Owns: decoding one packet (a WebSocket message or one part of a polling payload) the way the Node server's
``engine.io-parser`` does (the same for what a client or a server receives), encoding packets, the OPEN
packet's handshake (``Handshake``: encoded by the server, decoded by the client), splitting and joining
polling payloads (``\\x1e``, binary as ``b<base64>``), and ``OutgoingMessage``, a message encoded once for
any number of recipients. Knows nothing of sockets, trio, HTTP or the socket lifecycle.

Why not ``engineio.packet.Packet.decode``: it JSON-parses the data of every packet (``4{"a":1}`` becomes a
dict, ``4true`` becomes ``True``) and accepts types 7-9, so it cannot hand the layer above the exact text
the client sent. Encoding is byte-for-byte the library's (``Packet.encode(b64=...)`` and
``Payload.encode()``); ``tests/engineio/test_codec.py`` checks that against ``engineio.packet`` and
``engineio.payload`` for every packet type and for text and binary data.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from server.http.frames import encode_frame

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)
SEPARATOR = "\x1e"

# Packets the server sends that never change: encode them once.
PING_PACKET = "2"
PROBE_PONG = "3probe"
NOOP_PACKET = "6"
CLOSE_PACKET = "1"


class DecodeError(ValueError):
    """A packet or payload the Node parser would turn into its ``error`` packet."""


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded client packet. ``data`` is the text after the type digit (``""`` if none) or the bytes
    of a binary message."""

    type: int
    data: str | bytes = ""


def decode_packet(raw: str | bytes) -> Packet:
    """Decode one packet: a WebSocket message, or one part of a polling payload.

    Binary messages are MESSAGE packets as they are. Text starts with a type digit 0-6, or ``b`` for a
    base64 binary message. Anything else (empty, an unknown type, bad base64) raises ``DecodeError``.
    """
    if not isinstance(raw, str):
        return Packet(MESSAGE, bytes(raw))
    if not raw:
        raise DecodeError("empty packet")
    head = raw[0]
    if head == "b":
        try:
            return Packet(MESSAGE, base64.b64decode(raw[1:], validate=True))
        except (binascii.Error, ValueError):
            raise DecodeError("invalid base64 binary packet") from None
    if "0" <= head <= "6":
        return Packet(ord(head) - 48, raw[1:])
    raise DecodeError(f"unknown packet type {head!r}")


@dataclass(frozen=True, slots=True)
class Handshake:
    """The JSON of the OPEN packet ``0{...}``, the server's side of the handshake. Times in seconds (the
    packet carries milliseconds); ``max_payload`` is 0 when the server did not say."""

    sid: str
    ping_interval: float
    ping_timeout: float
    max_payload: int
    upgrades: tuple[str, ...] = ()

    def encode(self) -> str:
        """The OPEN packet, fields in the order the Node server writes them."""
        handshake = {
            "sid": self.sid,
            "upgrades": list(self.upgrades),
            "pingInterval": round(self.ping_interval * 1000),
            "pingTimeout": round(self.ping_timeout * 1000),
            "maxPayload": self.max_payload,
        }
        return encode_packet(OPEN, json.dumps(handshake, separators=(",", ":")))


def decode_handshake(data: str) -> Handshake:
    """The data of an OPEN packet (the text after ``0``); ``DecodeError`` unless it is a JSON object with a
    sid and non-negative ``pingInterval`` / ``pingTimeout``."""
    try:
        fields = json.loads(data)
    except ValueError:
        raise DecodeError(f"OPEN packet data is not JSON: {data[:80]!r}") from None
    if not isinstance(fields, dict):
        raise DecodeError(f"OPEN packet without a JSON object: {data[:80]!r}")
    sid = fields.get("sid")
    if not isinstance(sid, str) or not sid:
        raise DecodeError(f"OPEN packet without a sid: {data[:80]!r}")
    upgrades = fields.get("upgrades")
    max_payload = fields.get("maxPayload", 0)
    return Handshake(
        sid,
        _seconds(fields.get("pingInterval"), "pingInterval"),
        _seconds(fields.get("pingTimeout"), "pingTimeout"),
        int(max_payload) if isinstance(max_payload, int) else 0,
        tuple(u for u in upgrades if isinstance(u, str)) if isinstance(upgrades, list) else (),
    )


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DecodeError(f"handshake field {name!r} must be a non-negative number, got {value!r}")
    return float(value) / 1000.0


def decode_payload(body: bytes) -> tuple[list[Packet], DecodeError | None]:
    """Decode a polling POST body: UTF-8 text, packets joined by ``\\x1e``.

    Like the Node parser, packets before the first bad one are returned, then the error (or None).
    An empty body is one empty packet, hence an error.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return [], DecodeError("payload is not UTF-8")
    packets: list[Packet] = []
    for part in text.split(SEPARATOR):
        try:
            packets.append(decode_packet(part))
        except DecodeError as error:
            return packets, error
    return packets, None


def encode_packet(packet_type: int, data: str = "") -> str:
    """A text packet: the type digit then the data."""
    return f"{packet_type}{data}"


def encode_message(data: str | bytes) -> str | bytes:
    """A MESSAGE packet for a WebSocket: ``"4" + text``, or the binary as it is."""
    if isinstance(data, str):
        return "4" + data
    return bytes(data)


def polling_text(packet: str | bytes) -> str:
    """One encoded packet as it appears in a polling payload (binary becomes ``b<base64>``)."""
    if isinstance(packet, str):
        return packet
    return "b" + base64.b64encode(packet).decode("ascii")


class OutgoingMessage:
    """A MESSAGE packet encoded once for every recipient of a fan-out.

    ``packet`` is the Engine.IO packet (``"4" + text`` or the binary). ``frame`` (the WebSocket frame) and
    ``polling`` (the payload part) are computed the first time a recipient of that kind needs them.
    """

    __slots__ = ("_frame", "_polling", "data", "packet")

    def __init__(self, data: str | bytes) -> None:
        self.data = data
        self.packet: str | bytes = encode_message(data)
        self._frame: bytes | None = None
        self._polling: str | None = None

    @property
    def frame(self) -> bytes:
        frame = self._frame
        if frame is None:
            frame = self._frame = encode_frame(self.packet)
        return frame

    @property
    def polling(self) -> str:
        text = self._polling
        if text is None:
            text = self._polling = polling_text(self.packet)
        return text

    def __repr__(self) -> str:
        return f"OutgoingMessage({self.data!r})"


Outgoing = str | bytes | OutgoingMessage
"""What a socket's outbox holds: an encoded text packet, a binary message, or a shared message."""


def encode_payload(packets: list[Outgoing]) -> str:
    """Join outbox entries into one polling payload."""
    return SEPARATOR.join(p.polling if isinstance(p, OutgoingMessage) else polling_text(p) for p in packets)
