"""The CLI's tiny HTTP/1.1 client against small real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import trio

from server.cli.http_client import BadResponse, HttpTimeout, Target, Unreachable, request
from tests.cli.conftest import free_port

Serve = Callable[[trio.SocketStream], Awaitable[None]]


async def serve_once(nursery: trio.Nursery, handler: Serve) -> str:
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def read_request(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
    return data


async def test_sends_host_auth_and_query_and_reads_a_chunked_body() -> None:
    seen: list[bytes] = []

    async def handler(stream: trio.SocketStream) -> None:
        seen.append(await read_request(stream))
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n"
        )

    async with trio.open_nursery() as nursery:
        url = await serve_once(nursery, handler)
        response = await request("GET", url + "/base/", "/admin/x", query={"after": "a b", "n": 2},
                                 headers=[("Authorization", "Bearer t")])
        nursery.cancel_scope.cancel()
    assert response.status == 200
    assert response.json() == {"a": 1}
    head = seen[0].decode()
    assert head.startswith("GET /base/admin/x?after=a+b&n=2 HTTP/1.1\r\n")
    assert "Authorization: Bearer t" in head and "Host: 127.0.0.1:" in head


async def test_garbage_is_a_bad_response() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(b"SSH-2.0-OpenSSH\r\n\r\n")

    async with trio.open_nursery() as nursery:
        url = await serve_once(nursery, handler)
        with pytest.raises(BadResponse):
            await request("GET", url, "/")
        nursery.cancel_scope.cancel()


async def test_a_server_that_closes_without_answering_is_a_bad_response() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await read_request(stream)

    async with trio.open_nursery() as nursery:
        url = await serve_once(nursery, handler)
        with pytest.raises(BadResponse, match="closed"):
            await request("GET", url, "/")
        nursery.cancel_scope.cancel()


async def test_a_silent_server_times_out(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        url = await serve_once(nursery, handler)
        with pytest.raises(HttpTimeout, match="within 5 s"):
            await request("GET", url, "/", timeout=5)
        nursery.cancel_scope.cancel()


async def test_nothing_listening_is_unreachable() -> None:
    with pytest.raises(Unreachable, match=r"(?i)connection refused"):
        await request("GET", f"http://127.0.0.1:{free_port()}", "/")


def test_target_parsing() -> None:
    assert Target.parse("http://example.com") == Target("http", "example.com", 80, "")
    assert Target.parse("https://h:8443/p/").host_header == "h:8443"
    assert Target.parse("http://[::1]:3000").host_header == "[::1]:3000"
    for bad in ("ftp://x", "localhost:3000", "http://"):
        with pytest.raises(ValueError):
            Target.parse(bad)
