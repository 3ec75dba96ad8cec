"""Turning a parsed request head into our ``Request``: one function for both parsers.

Owns: ``make_request`` and its parts: ``split_target`` (path and the query's first values),
``collect_headers`` (keyed by lower-case name, repeats joined), the interning of what repeats from
client to client, the RFC 6455 upgrade check. Both the h11 path and the fast path
(``server.http._fastpath``) use them, so a request means the same whichever parser read it. Knows nothing
of sockets, h11 or byte-level parsing.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

from server.http._intern import pool as intern
from server.http.types import Request

_SHARED_HEADER_VALUES = frozenset({
    "host", "connection", "upgrade", "sec-websocket-version", "sec-websocket-extensions", "user-agent",
    "accept", "accept-encoding", "accept-language", "origin", "pragma", "cache-control",
})
_SHARED_QUERY_VALUES = frozenset({"EIO", "transport"})


def tokens(value: str) -> set[str]:
    """The lower-case items of a comma-separated header value."""
    return {t.strip().lower() for t in value.split(",")}


def _is_websocket_upgrade(method: str, headers: dict[str, str]) -> bool:
    if method != "GET" or "upgrade" not in headers or "websocket" not in tokens(headers["upgrade"]):
        return False
    if "upgrade" not in tokens(headers.get("connection", "")):
        return False
    if headers.get("sec-websocket-version", "").strip() != "13":
        return False
    try:
        return len(b64decode(headers.get("sec-websocket-key", "").strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def split_target(target: str) -> tuple[str, dict[str, str]]:
    """The percent-decoded path and the first value of each query parameter of a request target."""
    if target.startswith("/"):
        raw_path, _, qs = target.partition("?")
    elif target == "*":
        raw_path, qs = "*", ""
    else:  # absolute-form: "http://host/path?q"
        parts = urlsplit(target)
        raw_path, qs = parts.path or "/", parts.query
    query: dict[str, str] = {}
    if qs:
        if "%" in qs or "+" in qs:
            for key, value in parse_qsl(qs, keep_blank_values=True):
                query.setdefault(intern(key), intern(value) if key in _SHARED_QUERY_VALUES else value)
        else:  # nothing to unquote: what parse_qsl(keep_blank_values=True) returns, without its overhead
            for part in qs.split("&"):
                key, _, value = part.partition("=")
                if part and key not in query:
                    query[intern(key)] = intern(value) if key in _SHARED_QUERY_VALUES else value
    return unquote(raw_path) if "%" in raw_path else raw_path, query


def collect_headers(head: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name (``head``: the (lower-case name, stripped value) pairs in order),
    repeats joined with ", "."""
    headers: dict[str, str] = {}
    for raw_name, value in head:
        # Names, and the values that repeat from client to client, are interned: a request is kept as long
        # as its websocket lives, so this is memory per idle connection.
        name = intern(raw_name)
        if name in _SHARED_HEADER_VALUES:
            value = intern(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def make_request(
    method: str, target: str, head: Iterable[tuple[str, str]], body: bytes, remote: tuple[str, int]
) -> Request:
    """``method`` upper case, ``target`` the raw request target, ``head`` the (lower-case name, value)
    pairs in arrival order (values already stripped of surrounding whitespace)."""
    path, query = split_target(target)
    headers = collect_headers(head)
    return Request(
        method=method,
        target=target,
        path=path,
        query=query,
        headers=headers,
        body=body,
        remote=remote,
        is_websocket_upgrade=_is_websocket_upgrade(method, headers),
    )
