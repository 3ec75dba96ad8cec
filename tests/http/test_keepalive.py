"""The listener's keep-alive timer: each idle connection closed at its own deadline, none earlier."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from server.http import HttpConfig, Request, Response, open_http_server
from tests.http.helpers import RawClient, make_app, request, until_no_connections

LOCAL = HttpConfig(host="127.0.0.1", port=0, keepalive_timeout=20.0)


async def test_a_request_restarts_the_keep_alive_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        for _ in range(4):  # 15 s apart: never idle for 20 s
            await client.send(request("GET", "/healthz"))
            assert (await client.response()).status == 200
            await trio.sleep(15)
        last = trio.current_time() - 15
        assert await client.closed_by_server()
        assert trio.current_time() - last == pytest.approx(20.0, abs=0.1)


async def test_each_connection_is_closed_at_its_own_deadline(autojump_clock: trio.testing.MockClock) -> None:
    closed_after: dict[int, float] = {}
    async with open_http_server(make_app(), LOCAL) as server:

        async def client(index: int) -> None:
            await trio.sleep(index * 3)  # answered at 0, 3, 6, 9 s
            conn = await RawClient.connect(server.port)
            await conn.send(request("GET", "/healthz"))
            assert (await conn.response()).status == 200
            answered = trio.current_time()
            if index == 2:  # busy again 10 s later: its timeout starts over
                await trio.sleep(10)
                await conn.send(request("GET", "/healthz"))
                assert (await conn.response()).status == 200
                answered = trio.current_time()
            assert await conn.closed_by_server()
            closed_after[index] = trio.current_time() - answered

        async with trio.open_nursery() as nursery:
            for index in range(4):
                nursery.start_soon(client, index)
        await until_no_connections(server)
    assert closed_after == {i: pytest.approx(20.0, abs=0.1) for i in range(4)}


async def test_a_long_handler_is_not_cut_by_the_keep_alive_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def long_poll(req: Request) -> Response:
        await trio.sleep(60)  # far past keepalive_timeout: only idle time counts
        return Response(200, b"late")

    async with open_http_server(long_poll, LOCAL) as server:
        conn = await RawClient.connect(server.port)
        for _ in range(2):  # the second one follows an idle wait
            await conn.send(request("GET", "/poll"))
            reply = await conn.response()
            assert (reply.status, reply.body) == (200, b"late")
