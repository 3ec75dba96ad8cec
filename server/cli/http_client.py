"""A tiny trio-native HTTP/1.1 client on ``trio.open_tcp_stream`` and h11, for the CLI's admin calls.

Owns: ``request`` (one request per connection, ``Connection: close``; whole bounded body in memory),
``HttpResponse`` and the transport errors ``Unreachable`` / ``HttpTimeout`` / ``BadResponse``. ``https``
URLs go through ``trio.SSLStream`` with the system's default verification. Knows nothing of the admin API's
routes, tokens or JSON shapes (``server.cli.admin_client``).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11
import trio

DEFAULT_TIMEOUT = 30.0
MAX_BODY = 64 * 1024 * 1024
_READ_SIZE = 65536


class HttpClientError(Exception):
    """The request could not be completed (no HTTP status to report)."""


class Unreachable(HttpClientError):
    """Nothing answered at the address (refused, no route, DNS failure)."""


class HttpTimeout(HttpClientError):
    """Connecting, or waiting for the response, took longer than the timeout."""


class BadResponse(HttpClientError):
    """The peer answered something that is not valid HTTP/1.1, or too much of it."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadResponse(f"the response is not JSON (HTTP {self.status})") from exc


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    base_path: str  # no trailing slash: "" or "/prefix"

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"bad port in {url!r}") from exc
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


async def request(
    method: str,
    url: str,
    path: str,
    *,
    query: dict[str, str | int] | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
) -> HttpResponse:
    """``method`` ``path`` (and ``query``) relative to the base ``url``; the whole response, bounded."""
    target = Target.parse(url)
    request_target = target.base_path + path
    if query:
        request_target += "?" + urlencode({k: str(v) for k, v in query.items()})
    with trio.move_on_after(timeout) as scope:
        return await _exchange(target, method, request_target, headers or [], body)
    assert scope.cancelled_caught
    raise HttpTimeout(f"no response from {url} within {timeout:g} s")


async def _connect(target: Target) -> trio.abc.Stream:
    try:
        if target.scheme == "https":
            return await trio.open_ssl_over_tcp_stream(
                target.host, target.port, ssl_context=ssl.create_default_context()
            )
        return await trio.open_tcp_stream(target.host, target.port)
    except OSError as exc:
        raise Unreachable(os_error_reason(exc)) from exc


def os_error_reason(exc: BaseException) -> str:
    """The most specific reason in an exception chain: trio wraps the per-address failures of a connect
    ("all attempts to connect ... failed") around the ``ConnectionRefusedError`` a person wants to see."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror[:1].lower() + current.strerror[1:]
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return str(exc) or type(exc).__name__


async def _exchange(
    target: Target, method: str, request_target: str, headers: list[tuple[str, str]], body: bytes
) -> HttpResponse:
    stream = await _connect(target)
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
    all_headers = [
        ("Host", target.host_header),
        ("User-Agent", "supervisor-cli"),
        ("Connection", "close"),
        ("Content-Length", str(len(body))),
        *headers,
    ]
    try:
        async with stream:
            pieces = [conn.send(h11.Request(method=method, target=request_target, headers=all_headers))]
            if body:
                pieces.append(conn.send(h11.Data(data=body)))
            pieces.append(conn.send(h11.EndOfMessage()))
            await stream.send_all(b"".join(p for p in pieces if p))
            return await _read_response(conn, stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError) as exc:
        raise Unreachable(f"the connection failed: {exc}") from exc
    except h11.ProtocolError as exc:
        raise BadResponse(f"invalid HTTP response: {exc}") from exc


async def _read_response(conn: h11.Connection, stream: trio.abc.Stream) -> HttpResponse:
    response: h11.Response | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(_READ_SIZE)
            if not data and response is None:
                raise BadResponse("the server closed the connection before answering")
            conn.receive_data(bytes(data))  # b"" tells h11 the peer closed
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.InformationalResponse):
            continue
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY:
                raise BadResponse(f"response body larger than {MAX_BODY} bytes")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            headers: dict[str, str] = {}
            for name, value in response.headers:
                key = name.decode("latin-1").lower()
                text = value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
            return HttpResponse(response.status_code, headers, b"".join(chunks))
        elif isinstance(event, h11.ConnectionClosed):
            raise BadResponse("the server closed the connection before answering")
