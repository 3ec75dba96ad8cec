"""``Server``: namespace connect/disconnect lifecycle and limits, with fake engine sockets (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import socketio.exceptions
import trio
import trio.testing

from server.socketio import ConnectionRefusedError, Server
from tests.socketio.fakes import FakeSocket, connect, running


async def test_connect_reply_has_a_new_sid_and_the_handler_gets_environ_and_auth() -> None:
    sio = Server()
    seen: dict[str, Any] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        seen.update(sid=sid, environ=environ, auth=auth)

    async with running(sio):
        sock = FakeSocket(query="EIO=4&transport=websocket&conversation_id=c1")
        await sio.engine_connect(sock)
        await sio.engine_message(sock, '0{"token":"t1"}')
        (reply,) = sock.sent
        sid = json.loads(reply[1:])["sid"]
        assert sid == seen["sid"] and sid != sock.sid
        assert seen["auth"] == {"token": "t1"}
        environ = seen["environ"]
        assert environ["QUERY_STRING"] == "EIO=4&transport=websocket&conversation_id=c1"
        assert environ["REMOTE_ADDR"] == "127.0.0.1"
        assert environ["HTTP_USER_AGENT"] == "fake"
        assert environ["PATH_INFO"] == "/socket.io/"
        assert environ["REQUEST_METHOD"] == "GET"
        assert environ["supervisor.request"] is sock.request
        assert sio.get_environ(sid) is environ
        assert sio.connected(sid)
        assert sio.transport(sid) == "websocket"


async def test_connect_handler_without_auth_parameter() -> None:
    sio = Server()
    calls: list[str] = []

    @sio.on("connect")
    def on_connect(sid: str, environ: dict[str, Any]) -> None:
        calls.append(sid)

    async with running(sio):
        sid = await connect(sio, FakeSocket(), auth={"ignored": True})
        assert calls == [sid]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (False, {"message": "Connection rejected by server"}),
        (ConnectionRefusedError("nope", {"msg_id": "AUTH"}), {"message": "nope", "data": {"msg_id": "AUTH"}}),
        (socketio.exceptions.ConnectionRefusedError("lib"), {"message": "lib"}),
        (RuntimeError("bug"), {"message": "Connection refused by server"}),
    ],
)
async def test_refusal_sends_connect_error(outcome: Any, expected: dict[str, Any]) -> None:
    sio = Server()

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> Any:
        sio.emit_nowait("queued", to=sid)  # dropped with the refusal
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async with running(sio):
        sock = FakeSocket()
        await sio.engine_connect(sock)
        await sio.engine_message(sock, "0")
        (reply,) = sock.sent
        assert reply[0] == "4" and json.loads(reply[1:]) == expected
        assert not sio._sockets and not sock.closed


async def test_unknown_namespace_is_refused_and_wildcard_accepts_all() -> None:
    async with running(Server(namespaces=["/", "/custom"])) as sio:
        sock = FakeSocket()
        await sio.engine_connect(sock)
        await sio.engine_message(sock, "0/random")
        assert sock.take() == ['4/random,{"message":"Invalid namespace"}']
        await connect(sio, sock, "/custom")
    async with running(Server(namespaces="*")) as sio:
        await connect(sio, FakeSocket(), "/anything")


async def test_namespace_with_a_handler_is_accepted() -> None:
    sio = Server()
    sio.on("x", lambda sid: None, namespace="/chat")
    async with running(sio):
        await connect(sio, FakeSocket(), "/chat")


async def test_events_emitted_during_connect_go_out_after_the_connect_reply() -> None:
    sio = Server()
    cache = type("Cache", (), {"wire": None})()

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        await sio.emit("first", 1, to=sid)
        sio.emit_nowait("broadcast", 2)
        assert sio.send_packet_nowait(sid, "/", "third", 3, cache=cache)
        await trio.lowlevel.checkpoint()
        sio.enter_room(sid, "lobby")
        sio.emit_nowait("to-room", 4, room="lobby")

    async with running(sio):
        sock = FakeSocket()
        await sio.engine_connect(sock)
        await sio.engine_message(sock, "0")
        assert str(sock.sent[0]).startswith("0{")
        assert sock.sent[1:] == ['2["first",1]', '2["broadcast",2]', '2["third",3]', '2["to-room",4]']


async def test_always_connect_replies_first_and_refuses_with_disconnect() -> None:
    sio = Server(always_connect=True)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        sio.emit_nowait("hello", to=sid)
        raise ConnectionRefusedError("later", 7)

    async with running(sio):
        sock = FakeSocket()
        await sio.engine_connect(sock)
        await sio.engine_message(sock, "0")
        reply, hello, bye = sock.sent
        assert str(reply).startswith("0{") and hello == '2["hello"]'
        assert bye == '1{"message":"later","data":7}'


async def test_engine_close_during_connect_handler_still_balances_connect_and_disconnect() -> None:
    sio = Server()
    release = trio.Event()
    log: list[tuple[str, str]] = []

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        log.append(("connect", sid))
        await release.wait()

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        log.append(("disconnect", reason))

    async with running(sio), trio.open_nursery() as nursery:
        sock = FakeSocket()
        await sio.engine_connect(sock)
        nursery.start_soon(sio.engine_message, sock, "0")
        await trio.testing.wait_all_tasks_blocked()
        sock.close("transport close")
        await sio.engine_disconnect(sock, "transport close")
        release.set()
    assert [entry[0] for entry in log] == ["connect", "disconnect"]
    assert log[1][1] == "transport close"
    assert sock.sent == []


async def test_connect_timeout_closes_a_connection_without_namespace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(Server(connect_timeout=5)) as sio:
        idle, active = FakeSocket("idle"), FakeSocket("active")
        await sio.engine_connect(idle)
        await connect(sio, active)
        await trio.sleep(4.9)
        assert not idle.closed
        await trio.sleep(0.2)
        assert idle.closed and idle.close_reason == "connect timeout"
        assert not active.closed


async def test_connect_timeout_is_cancelled_by_disconnect(autojump_clock: trio.testing.MockClock) -> None:
    async with running(Server(connect_timeout=5)) as sio:
        sock = FakeSocket()
        await sio.engine_connect(sock)
        await sio.engine_disconnect(sock, "transport close")
        await trio.sleep(10)
        assert not sock.closed
        assert len(sio._timers) == 0


async def test_handler_exception_is_logged_and_the_connection_lives_on() -> None:
    sio = Server()

    @sio.on("boom")
    async def boom(sid: str) -> None:
        raise ValueError("bug")

    @sio.on("echo")
    async def echo(sid: str, value: Any) -> Any:
        return value

    async with running(sio):
        sock = FakeSocket()
        await connect(sio, sock)
        await sio.engine_message(sock, '21["boom"]')
        await sio.engine_message(sock, '22["echo","fine"]')
        assert sock.take() == ['32["fine"]']
        assert not sock.closed


async def test_async_handlers_are_bounded_per_connection() -> None:
    sio = Server(async_handlers=True, max_handlers_per_connection=2)
    release = trio.Event()
    running_now: list[int] = []

    @sio.on("work")
    async def work(sid: str, n: int) -> None:
        running_now.append(n)
        await release.wait()

    async with running(sio), trio.open_nursery() as nursery:
        sock = FakeSocket()
        await connect(sio, sock)

        async def feed() -> None:
            for n in range(3):
                await sio.engine_message(sock, f'2["work",{n}]')

        nursery.start_soon(feed)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(running_now) == [0, 1]  # the third waits in the reader
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(running_now) == [0, 1, 2]


async def test_connect_backlog_is_bounded() -> None:
    sio = Server(max_connect_backlog=3)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        assert [sio.send_packet_nowait(sid, "/", "e", n) for n in range(4)] == [True, True, True, False]

    async with running(sio):
        sock = FakeSocket()
        await sio.engine_connect(sock)
        await sio.engine_message(sock, "0")
        assert sock.closed and sock.sent == []


async def test_disconnect_reasons_and_session_in_the_disconnect_handler() -> None:
    sio = Server(namespaces=["/", "/custom"])
    reasons: list[tuple[str, str, Any]] = []

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        session = await sio.get_session(sid)
        reasons.append(("/", reason, session.get("user")))

    @sio.on("disconnect", namespace="/custom")
    def disconnect_custom(sid: str) -> None:  # the legacy one-argument form
        reasons.append(("/custom", "-", None))

    async with running(sio):
        sock = FakeSocket()
        sid = await connect(sio, sock)
        custom = await connect(sio, sock, "/custom")
        async with sio.session(sid) as session:
            session["user"] = "ann"
        await sio.engine_message(sock, "1/custom,")  # leaves /custom only
        assert sio.connected(sid) and not sio.connected(custom)
        await sio.engine_message(sock, '2["still"]')
        await sio.disconnect(sid)
        assert sock.take() == ["1"]
        assert reasons == [("/custom", "-", None), ("/", "server disconnect", "ann")]
        assert sio.rooms(sid) == [] and not sio._sockets

        other = FakeSocket("e2")
        sid2 = await connect(sio, other)
        await sio.engine_message(other, "1")
        await sio.engine_disconnect(other, "client disconnect")
        third = FakeSocket("e3")
        await connect(sio, third)
        await sio.engine_disconnect(third, "ping timeout")
        assert reasons[2:] == [("/", "client disconnect", None), ("/", "ping timeout", None)]
        assert sid2 not in sio._sockets


async def test_disconnect_nowait_runs_the_handler_in_a_server_task() -> None:
    sio = Server()
    reasons: list[str] = []
    sio.on("disconnect", lambda sid, reason: reasons.append(reason))
    async with running(sio):
        sock = FakeSocket()
        sid = await connect(sio, sock)
        sio.disconnect_nowait(sid)
        assert sock.take() == ["1"] and not sio.connected(sid)
        await trio.testing.wait_all_tasks_blocked()
        assert reasons == ["server disconnect"]


async def test_close_connection_closes_the_engine_socket() -> None:
    async with running(Server()) as sio:
        sock = FakeSocket()
        sid = await connect(sio, sock)
        sio.close_connection(sid, "transport error")
        assert sock.closed and sock.close_reason == "transport error"


async def test_protocol_violation_closes_and_handlers_see_the_engine_reason() -> None:
    sio = Server()
    reasons: list[str] = []
    sio.on("disconnect", lambda sid, reason: reasons.append(reason))
    async with running(sio):
        sock = FakeSocket()
        await connect(sio, sock)
        await sio.engine_message(sock, "2{}")
        assert sock.closed and sock.close_reason == "parse error"
        await sio.engine_message(sock, '2["ignored"]')
        await sio.engine_disconnect(sock, "parse error")
        assert reasons == ["parse error"]


async def test_wait_writable_returns_for_unknown_and_connected_sids() -> None:
    async with running(Server()) as sio:
        sock = FakeSocket()
        sid = await connect(sio, sock)
        with trio.fail_after(1):
            await sio.wait_writable(sid)
            await sio.wait_writable("unknown")


async def test_engine_connect_requires_a_running_server() -> None:
    with pytest.raises(RuntimeError):
        await Server().engine_connect(FakeSocket())
