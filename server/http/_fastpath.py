"""The HTTP/1.1 fast path: the plain requests long-polling sends, read and answered without h11.

Owns: ``parse_head`` (recognise a complete, plain request head in the receive buffer) and
``encode_response`` (the bytes of a response to such a request). Sans-IO: bytes in, values out; knows
nothing of sockets, timeouts or handlers (``server.http.connection`` drives it).

Theory of operation. h11 costs tens of microseconds per request, most of the server's time when every
Engine.IO polling message is its own request. The fast path accepts only a strict subset of what h11
accepts, and gives it exactly the meaning h11 would: a request line ``GET|POST SP origin-form SP
HTTP/1.1``, header lines ``token ":" OWS value OWS`` joined by CRLF (no obs-fold, no bare LF, no NUL or
other control whitespace), exactly one Host, at most one plain-digits Content-Length, and none of the
headers that change the connection's framing or state: Transfer-Encoding, Expect, Upgrade, or a
Connection other than ``keep-alive``. Anything else, complete or not, is ``FALLBACK``: the caller hands
the same bytes to h11, which then accepts or rejects it as it always did. So the fast path can only
ever be faster, never different; tests/http/test_fastpath.py checks that against h11. A client repeats
its header lines on every request (only the target and Content-Length change), so a block of header
lines is validated and parsed once and its meaning kept in a small bounded table keyed by its bytes.

A response to a fast-path request is written the way h11 writes it (status line with the stdlib reason
phrase, headers in order with their own spelling), after the same validation h11 applies to response
headers; an invalid one is reported (None) and the caller answers 500, as on the h11 path. Encoded
header lines are cached per (name, value), so CORS headers are validated and encoded once per origin.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Final

from server.http._request import collect_headers, split_target, tokens
from server.http.types import Request

NEED_MORE: Final = "need-more"  # no complete head yet, and what there is may still become a plain one
FALLBACK: Final = "fallback"  # let h11 read this request

_REQUEST_LINE = re.compile(rb"(GET|POST) (/[\x21-\x7e]*) HTTP/1\.1")
# Header lines as h11 accepts them (its field-value with the optional whitespace around it is exactly a
# run of space, tab and "field-vchar" = anything but NUL and ASCII whitespace), each ending in CRLF.
_HEADER_LINES = re.compile(rb"(?:[-!#$%&'*+.^_`|~0-9a-zA-Z]+:[^\x00\n\r\x0b\x0c]*\r\n)*")
_DIGITS = re.compile(r"[0-9]{1,20}")
# Headers whose presence changes framing or connection state: h11 handles these requests.
_STATEFUL = frozenset({"transfer-encoding", "expect", "upgrade"})

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_NO_BODY_STATUSES = frozenset({204, 304})
_FRAMING = frozenset({"content-length", "transfer-encoding"})
_CACHE_LIMIT = 2048


class Head:
    """A plain request head: the ``Request`` (body not yet read), where the body starts and how long it
    is, and the head's size as the connection's limit counts it."""

    __slots__ = ("body_start", "content_length", "request", "size")

    def __init__(self, request: Request, body_start: int, content_length: int, size: int) -> None:
        self.request = request
        self.body_start = body_start
        self.content_length = content_length
        self.size = size


class _Fields:
    """What a validated block of header lines means: shared by every request that repeats it."""

    __slots__ = ("content_length", "headers", "size")

    def __init__(self, headers: dict[str, str], content_length: int, size: int) -> None:
        self.headers = headers
        self.content_length = content_length
        self.size = size  # the block's part of the head size


# Header blocks seen lately (a client repeats its headers on every request; only Content-Length and the
# target change): validated and parsed once. None: not a plain block.
_BLOCKS: dict[bytes, _Fields | None] = {}
BLOCK_TABLE_LIMIT = 512
BLOCK_CACHED_UP_TO = 2048  # bytes: longer blocks are parsed every time
_UNSEEN: Final = _Fields({}, 0, 0)


def cached_blocks() -> list[bytes]:
    """The header blocks whose meaning is kept (for tests)."""
    return list(_BLOCKS)


def parse_head(buf: bytes, remote: tuple[str, int]) -> Head | str:
    """A ``Head`` if ``buf`` starts with a complete plain request head, else ``NEED_MORE`` or
    ``FALLBACK`` (see the module docstring). ``buf`` must not be empty."""
    end = buf.find(b"\r\n\r\n")
    if end == -1:
        # h11 rejects a first byte below "!" at once, and ends a head at a bare-LF blank line.
        if buf[0] < 0x21 or b"\n\n" in buf or b"\n\r\n" in buf:
            return FALLBACK
        return NEED_MORE
    line_end = buf.find(b"\r\n")
    match = _REQUEST_LINE.fullmatch(buf, 0, line_end)
    if match is None:
        return FALLBACK
    block = buf[line_end + 2 : end + 2]
    fields = _BLOCKS.get(block, _UNSEEN)
    if fields is _UNSEEN:
        fields = _parse_fields(block)
        if len(block) <= BLOCK_CACHED_UP_TO:
            if len(_BLOCKS) >= BLOCK_TABLE_LIMIT:
                _BLOCKS.clear()
            _BLOCKS[block] = fields
    if fields is None:
        return FALLBACK
    target = match.group(2).decode("ascii")
    path, query = split_target(target)
    # No Upgrade header on this path, so never a websocket upgrade.
    request = Request(match.group(1).decode("ascii"), target, path, query, fields.headers.copy(), b"", remote)
    return Head(request, end + 4, fields.content_length, len(target) + 16 + fields.size)


def _parse_fields(block: bytes) -> _Fields | None:
    """The meaning of a block of header lines (each ending in CRLF), None if it is not plain."""
    if _HEADER_LINES.fullmatch(block) is None:
        return None  # also catches an earlier bare-LF blank line: LF is not allowed inside a line
    size = 0
    hosts = 0
    length = 0
    seen_length = False
    pairs: list[tuple[str, str]] = []
    for line in block[:-2].decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        name = name.lower()
        value = value.strip(" \t")
        size += len(name) + len(value) + 4
        if name == "host":
            hosts += 1
        elif name == "content-length":
            if seen_length or _DIGITS.fullmatch(value) is None:
                return None
            seen_length = True
            length = int(value)
        elif name == "connection":
            if value.lower() != "keep-alive":
                return None
        elif name in _STATEFUL:
            return None
        pairs.append((name, value))
    if hosts != 1:
        return None
    return _Fields(collect_headers(pairs), length, size)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


_STATUS_LINES: dict[int, bytes] = {}
_CONTENT_TYPES: dict[str, bytes | None] = {}
_HEADER_LINES_CACHE: dict[tuple[str, str], bytes | None] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, _reason(status))
        if len(_STATUS_LINES) < _CACHE_LIMIT:
            _STATUS_LINES[status] = line
    return line


def header_line(name: str, value: str) -> bytes | None:
    """``name: value\\r\\n``, or None when h11 would refuse to send that header. Cached (bounded)."""
    key = (name, value)
    line = _HEADER_LINES_CACHE.get(key, b"")
    if line != b"":
        return line
    raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
    if _TOKEN.fullmatch(raw_name) is None or _FIELD_VALUE.fullmatch(raw_value) is None:
        line = None
    else:
        line = b"%s: %s\r\n" % (raw_name, raw_value)
    if len(_HEADER_LINES_CACHE) < _CACHE_LIMIT:
        _HEADER_LINES_CACHE[key] = line
    return line


def _content_type_line(content_type: str) -> bytes | None:
    line = _CONTENT_TYPES.get(content_type, b"")
    if line != b"":
        return line
    value = header_line("content-type", content_type)
    if len(_CONTENT_TYPES) < _CACHE_LIMIT:
        _CONTENT_TYPES[content_type] = value
    return value


def encode_response(
    status: int,
    body: bytes,
    headers: Sequence[tuple[str, str]],
    content_type: str,
    keep_alive: bool,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> tuple[bytes, bool] | None:
    """The response bytes and whether the connection stays open, or None if h11 would refuse the
    response. ``extra``: the listener's own headers, written after the handler's. A ``Connection:
    close`` from the handler closes; its framing headers are replaced by ours."""
    if not 200 <= status < 1000:
        return None
    parts = [_status_line(status)]
    if status not in _NO_BODY_STATUSES:
        ctype = _content_type_line(content_type)
        if ctype is None:
            return None
        parts.append(ctype)
        parts.append(b"content-length: %d\r\n" % len(body))
    else:
        body = b""
    for name, value in headers:
        lower = name.lower()
        if lower == "connection":
            keep_alive = keep_alive and "close" not in tokens(value)
        elif lower not in _FRAMING:
            line = header_line(name, value)
            if line is None:
                return None
            parts.append(line)
    for raw_name, raw_value in extra:
        line = header_line(raw_name.decode("latin-1"), raw_value.decode("latin-1"))
        if line is None:
            return None
        parts.append(line)
    parts.append(b"\r\n" if keep_alive else b"connection: close\r\n\r\n")
    if body:
        parts.append(body)
    return b"".join(parts), keep_alive
