"""RFC 6455 framing, sans-IO: server frames out, client frames in.

Owns: ``encode_frame`` (one unmasked server frame per message: the hot path of a broadcast, byte-for-byte
what wsproto sends for the same message without extensions), close/pong encoders, and ``FrameParser``,
which turns masked client bytes into whole messages and control events (reassembling continuation frames,
enforcing the message size limit before buffering a frame, validating UTF-8 and close codes).
Knows nothing of sockets, trio, HTTP or what the messages mean. No extensions are supported (the
handshake declines permessage-deflate), so a frame with an RSV bit set is a protocol error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

# Close codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

# Codes a peer may send in a close frame below 3000 (the others there are reserved or local-only).
_VALID_PROTOCOL_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})

_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


def _frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n <= 125:
        return bytes((first, n)) + payload
    if n <= 0xFFFF:
        return _HEAD16.pack(first, 126, n) + payload
    return _HEAD64.pack(first, 127, n) + payload


def encode_frame(data: str | bytes) -> bytes:
    """One whole, unmasked server frame: text for ``str``, binary for ``bytes``."""
    if isinstance(data, str):
        return _frame(0x80 | OP_TEXT, data.encode("utf-8"))
    return _frame(0x80 | OP_BINARY, bytes(data))


def encode_close(code: int | None = CLOSE_NORMAL, reason: str = "") -> bytes:
    """A close frame; the reason is cut (on a character boundary) to fit the 125-byte control limit."""
    if code is None or code == CLOSE_NO_STATUS:
        return bytes((0x80 | OP_CLOSE, 0))
    raw = reason.encode("utf-8")
    if len(raw) > 123:
        raw = raw[:123].decode("utf-8", errors="ignore").encode("utf-8")
    return _frame(0x80 | OP_CLOSE, _U16.pack(code) + raw)


def encode_pong(payload: bytes) -> bytes:
    return _frame(0x80 | OP_PONG, payload)


def encode_ping(payload: bytes = b"") -> bytes:
    return _frame(0x80 | OP_PING, payload)


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the repeating 4-byte ``mask`` (one big-int XOR: fast in CPython)."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameError(Exception):
    """The peer broke the protocol; close the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ping:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Event = str | bytes | Ping | Pong | Close


class FrameParser:
    """Masked client frames in, whole messages and control events out.

    ``feed(data)`` then call ``next_event()`` until it returns None (it needs more bytes). Messages come out
    as ``str`` (text) or ``bytes`` (binary); control frames as ``Ping``/``Pong``/``Close``. Violations raise
    ``FrameError`` with the close code to send. After a ``Close`` no more events are produced.
    """

    __slots__ = ("_buf", "_closed", "_max", "_opcode", "_parts", "_pos", "_size")

    def __init__(self, max_message_size: int) -> None:
        self._max = max_message_size
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._opcode = 0  # opcode of the fragmented message in progress, 0 when none
        self._parts: list[bytes] | None = None
        self._size = 0
        self._closed = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events (a partial frame or message)."""
        return len(self._buf) - self._pos + self._size

    def feed(self, data: bytes) -> None:
        if self._pos >= len(self._buf):
            self._buf = data
        elif isinstance(self._buf, bytearray):
            del self._buf[: self._pos]
            self._buf += data
        else:
            self._buf = bytearray(memoryview(self._buf)[self._pos :]) + data
        self._pos = 0

    def next_event(self) -> Event | None:
        while not self._closed:
            buf, pos = self._buf, self._pos
            avail = len(buf) - pos
            if avail < 2:
                return None
            b0, b1 = buf[pos], buf[pos + 1]
            fin, opcode, length = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if b0 & 0x70:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension was negotiated)")
            if not b1 & 0x80:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "client frame not masked")
            head = 2
            if length == 126:
                if avail < 4:
                    return None
                (length,) = _U16.unpack_from(buf, pos + 2)
                head = 4
            elif length == 127:
                if avail < 10:
                    return None
                (length,) = _U64.unpack_from(buf, pos + 2)
                if length >> 63:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "frame length has its top bit set")
                head = 10
            if opcode >= 0x8:
                if opcode > OP_PONG:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
                if length > 125 or not fin:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "control frame too long or fragmented")
            else:
                if opcode > OP_BINARY:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
                if opcode == OP_CONTINUATION:
                    if not self._opcode:
                        raise FrameError(CLOSE_PROTOCOL_ERROR, "continuation without a message")
                elif self._opcode:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
                # Checked on the header, so an oversized frame is never buffered.
                if self._size + length > self._max:
                    raise FrameError(CLOSE_TOO_BIG, f"message larger than {self._max} bytes")
            end = pos + head + 4 + length
            if len(buf) < end:
                return None
            mask = bytes(buf[pos + head : pos + head + 4])
            payload = unmask(bytes(buf[pos + head + 4 : end]), mask)
            self._pos = end
            if opcode >= 0x8:
                if opcode == OP_PING:
                    return Ping(payload)
                if opcode == OP_PONG:
                    return Pong(payload)
                self._closed = True
                return _parse_close(payload)
            if opcode and fin:  # the common case: a whole message in one frame
                return _finish(opcode, payload)
            if opcode:
                self._opcode = opcode
                self._parts = [payload]
            else:
                assert self._parts is not None
                self._parts.append(payload)
            self._size += length
            if fin:
                whole, opcode = b"".join(self._parts or ()), self._opcode
                self._parts, self._opcode, self._size = None, 0, 0
                return _finish(opcode, whole)
        return None


def _finish(opcode: int, payload: bytes) -> str | bytes:
    if opcode == OP_BINARY:
        return payload
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, "text message is not valid UTF-8") from None


def _parse_close(payload: bytes) -> Close:
    if not payload:
        return Close(CLOSE_NO_STATUS, "")
    if len(payload) == 1:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload")
    (code,) = _U16.unpack_from(payload)
    if not (1000 <= code < 5000) or (code < 3000 and code not in _VALID_PROTOCOL_CODES):
        raise FrameError(CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, "close reason is not valid UTF-8") from None
    return Close(code, reason)
