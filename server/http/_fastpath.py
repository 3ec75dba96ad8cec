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
ever be faster, never different; tests/http/test_fastpath.py checks that against h11.

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

from server.http._request import make_request, tokens
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
    if match is None or _HEADER_LINES.fullmatch(buf, line_end + 2, end + 2) is None:
        return FALLBACK  # also catches an earlier bare-LF blank line: LF is not allowed inside a line
    method, target = match.group(1).decode("ascii"), match.group(2).decode("ascii")
    size = len(target) + 16
    hosts = 0
    length = 0
    seen_length = False
    fields: list[tuple[str, str]] = []
    for line in buf[line_end + 2 : end].decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        name = name.lower()
        value = value.strip(" \t")
        size += len(name) + len(value) + 4
        if name == "host":
            hosts += 1
        elif name == "content-length":
            if seen_length or _DIGITS.fullmatch(value) is None:
                return FALLBACK
            seen_length = True
            length = int(value)
        elif name == "connection":
            if value.lower() != "keep-alive":
                return FALLBACK
        elif name in _STATEFUL:
            return FALLBACK
        fields.append((name, value))
    if hosts != 1:
        return FALLBACK
    request = make_request(method, target, fields, b"", remote)
    return Head(request, end + 4, length, size)


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
