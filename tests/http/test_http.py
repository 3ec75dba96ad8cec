"""HTTP/1.1 behaviour of server/http over real sockets on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from server.http import HttpConfig, Request, Response, open_http_server
from tests.http.helpers import RawClient, make_app, request, until_no_connections

LOCAL = HttpConfig(host="127.0.0.1", port=0)


async def test_started_reports_the_bound_ephemeral_port() -> None:
    from server.http import HttpServer

    server = HttpServer(LOCAL, make_app())
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(server.serve)
        assert host == "127.0.0.1"
        assert port > 0
        assert server.port == port
        assert server.url == f"http://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        for i in range(5):
            await client.send(request("POST", f"/echo/{i}", f"body {i}".encode()))
            reply = await client.response()
            assert reply.status == 200
            assert reply.body == f"body {i}".encode()
            assert reply.headers["content-length"] == str(len(reply.body))
            assert "connection" not in reply.headers
        assert server.connection_count == 1


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"".join(request("POST", "/echo/", str(i).encode()) for i in range(4)))
        assert [(await client.response()).body for _ in range(4)] == [b"0", b"1", b"2", b"3"]


async def test_connection_close_is_honoured() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("GET", "/healthz", headers=("connection: close",)))
        reply = await client.response()
        assert (reply.status, reply.body, reply.headers["connection"]) == (200, b"ok", "close")
        assert await client.closed_by_server()


async def test_unknown_path_is_404_and_keeps_the_connection() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("GET", "/nope"))
        assert (await client.response()).status == 404
        await client.send(request("GET", "/healthz"))
        assert (await client.response()).status == 200


async def test_head_and_options_reach_the_handler() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("HEAD", "/echo/x"))
        reply = await client.response(head=True)
        assert reply.status == 200
        assert reply.headers["x-method"] == "HEAD"
        await client.send(request("OPTIONS", "/echo/x"))
        reply = await client.response()
        assert (reply.status, reply.headers["x-method"]) == (200, "OPTIONS")


async def test_request_fields_are_parsed() -> None:
    seen: list[Request] = []

    async def capture(req: Request) -> Response:
        seen.append(req)
        return Response(204)

    async with open_http_server(capture, LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("GET", "/a%20b/?EIO=4&transport=polling&EIO=5&empty=",
                                  headers=("X-Two: 1", "x-two: 2")))
        reply = await client.response()
        assert reply.status == 204
        assert "content-length" not in reply.headers
    req = seen[0]
    assert (req.method, req.path) == ("GET", "/a b/")
    assert req.target == "/a%20b/?EIO=4&transport=polling&EIO=5&empty="
    assert req.query == {"EIO": "4", "transport": "polling", "empty": ""}
    assert req.headers["x-two"] == "1, 2"
    assert req.remote[0] == "127.0.0.1"
    assert not req.is_websocket_upgrade


async def test_body_over_the_limit_is_413_before_it_is_sent() -> None:
    config = LOCAL.with_(max_request_body=1000)
    async with open_http_server(make_app(), config) as server:
        client = await RawClient.connect(server.port)
        # Only the head is sent: the 413 must not wait for the 5000 announced bytes.
        await client.send(b"POST /echo/ HTTP/1.1\r\nhost: t\r\ncontent-length: 5000\r\n\r\n")
        reply = await client.response()
        assert reply.status == 413
        assert reply.headers["connection"] == "close"
        assert await client.closed_by_server()


async def test_chunked_body_over_the_limit_is_413() -> None:
    config = LOCAL.with_(max_request_body=1000)
    async with open_http_server(make_app(), config) as server:
        client = await RawClient.connect(server.port)
        chunk = b"200\r\n" + b"x" * 0x200 + b"\r\n"
        head = b"POST /echo/ HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
        await client.send(head + chunk * 3)
        assert (await client.response()).status == 413


async def test_chunked_body_within_the_limit_is_joined() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST /echo/ HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
                          b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        reply = await client.response()
        assert (reply.status, reply.body) == (200, b"abcde")


async def test_malformed_request_gets_400_and_close() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"THIS IS NOT HTTP\r\n\r\n")
        reply = await client.response()
        assert reply.status == 400
        assert reply.headers["connection"] == "close"
        assert reply.body  # a short explanation
        assert await client.closed_by_server()


async def test_oversized_headers_get_431() -> None:
    config = LOCAL.with_(max_header_size=2048)
    async with open_http_server(make_app(), config) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 4096 + b"\r\n\r\n")
        assert (await client.response()).status == 431
        assert await client.closed_by_server()


async def test_slowloris_headers_time_out(autojump_clock: trio.testing.MockClock) -> None:
    config = LOCAL.with_(request_timeout=5.0)
    async with open_http_server(make_app(), config) as server:
        client = await RawClient.connect(server.port)
        start = trio.current_time()
        await client.send(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(3):  # a header line now and then, never the end of the head
            await trio.sleep(1)
            await client.send(b"x-drip: 1\r\n")
        reply = await client.response()
        assert reply.status == 408
        assert await client.closed_by_server()
        assert trio.current_time() - start == pytest.approx(5.0, abs=0.5)


async def test_slow_body_times_out(autojump_clock: trio.testing.MockClock) -> None:
    config = LOCAL.with_(request_timeout=5.0)
    async with open_http_server(make_app(), config) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST /echo/ HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc")
        assert (await client.response()).status == 408


async def test_idle_keep_alive_connection_is_closed(autojump_clock: trio.testing.MockClock) -> None:
    config = LOCAL.with_(keepalive_timeout=20.0)
    async with open_http_server(make_app(), config) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("GET", "/healthz"))
        assert (await client.response()).status == 200
        start = trio.current_time()
        assert await client.closed_by_server()
        assert trio.current_time() - start == pytest.approx(20.0, abs=0.5)
        assert server.connection_count == 0


async def test_handler_exception_is_500_and_other_connections_keep_working() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        other = await RawClient.connect(server.port)
        await other.send(request("GET", "/healthz"))
        assert (await other.response()).status == 200
        victim = await RawClient.connect(server.port)
        await victim.send(request("GET", "/boom"))
        reply = await victim.response()
        assert reply.status == 500
        assert reply.headers["connection"] == "close"
        assert await victim.closed_by_server()
        await other.send(request("GET", "/healthz"))
        assert (await other.response()).status == 200
        fresh = await RawClient.connect(server.port)
        await fresh.send(request("GET", "/healthz"))
        assert (await fresh.response()).status == 200


async def test_long_poll_handler_is_awaited_and_peer_close_ends_the_task() -> None:
    release = trio.Event()
    entered = trio.Event()

    async def long_poll(req: Request) -> Response:
        entered.set()
        await release.wait()
        return Response(200, b"late")

    async with open_http_server(long_poll, LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("GET", "/poll"))
        await entered.wait()
        await client.aclose()  # the peer leaves while the handler is pending
        release.set()
        await until_no_connections(server)


async def test_connection_cap_queues_new_connections_until_one_closes() -> None:
    config = LOCAL.with_(max_connections=1)
    async with open_http_server(make_app(), config) as server:
        first = await RawClient.connect(server.port)
        await first.send(request("GET", "/healthz"))
        assert (await first.response()).status == 200
        second = await RawClient.connect(server.port)  # completes in the kernel backlog
        await second.send(request("GET", "/healthz"))
        await trio.testing.wait_all_tasks_blocked()
        assert server.connection_count == 1
        await first.aclose()
        with trio.fail_after(5):
            assert (await second.response()).status == 200


async def test_graceful_shutdown_finishes_in_flight_requests() -> None:
    release = trio.Event()
    entered = trio.Event()

    async def slow(req: Request) -> Response:
        entered.set()
        await release.wait()
        return Response(200, b"done")

    from server.http import HttpServer

    server = HttpServer(LOCAL, slow)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(server.serve)
        idle = await RawClient.connect(port)
        busy = await RawClient.connect(port)
        await busy.send(request("GET", "/slow"))
        await entered.wait()
        await trio.testing.wait_all_tasks_blocked()
        server.shutdown()
        assert await idle.closed_by_server()  # an idle keep-alive connection is dropped at once
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)  # no longer accepting
        release.set()
        reply = await busy.response()
        assert (reply.status, reply.body, reply.headers["connection"]) == (200, b"done", "close")
        assert await busy.closed_by_server()
        with trio.fail_after(5):
            await server.aclose()


async def test_shutdown_grace_cancels_stuck_handlers(autojump_clock: trio.testing.MockClock) -> None:
    async def stuck(req: Request) -> Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    from server.http import HttpServer

    server = HttpServer(LOCAL.with_(shutdown_grace=3.0), stuck)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(server.serve)
        client = await RawClient.connect(port)
        await client.send(request("GET", "/"))
        await trio.sleep(1)
        start = trio.current_time()
        await server.aclose()
        assert trio.current_time() - start == pytest.approx(3.0, abs=0.1)
        assert await client.closed_by_server()


def test_ipv6_any_address_binds() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")

    async def main() -> int:
        async with open_http_server(make_app(), LOCAL.with_(host="::1")) as server:
            stream = await trio.open_tcp_stream("::1", server.port)
            client = RawClient(stream)
            await client.send(request("GET", "/healthz"))
            return (await client.response()).status

    try:
        assert trio.run(main) == 200
    except OSError:
        pytest.skip("IPv6 loopback unavailable")


async def test_expect_100_continue_gets_an_interim_response() -> None:
    async with open_http_server(make_app(), LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST /echo/ HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n"
                          b"expect: 100-continue\r\n\r\n")
        assert (await client.response()).status == 100
        await client.send(b"hello")
        reply = await client.response()
        assert (reply.status, reply.body) == (200, b"hello")


async def test_handler_can_ask_to_close_the_connection() -> None:
    async def closing(req: Request) -> Response:
        return Response(200, b"bye", [("Connection", "close")])

    async with open_http_server(closing, LOCAL) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("GET", "/"))
        reply = await client.response()
        assert (reply.status, reply.headers["connection"]) == (200, "close")
        assert await client.closed_by_server()


async def test_413_survives_a_client_that_keeps_sending_its_body() -> None:
    config = LOCAL.with_(max_request_body=1000)
    async with open_http_server(make_app(), config) as server:
        client = await RawClient.connect(server.port)
        body = b"z" * 300_000
        await client.send(b"POST /echo/ HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % len(body))

        async def send_body() -> None:
            await client.stream.send_all(body)
            await client.stream.send_eof()

        async with trio.open_nursery() as nursery:
            # The body goes on arriving after the 413: the response must not be lost to a reset.
            nursery.start_soon(send_body)
            assert (await client.response()).status == 413
        assert await client.closed_by_server()
