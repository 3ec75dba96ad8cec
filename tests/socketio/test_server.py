"""``Server``: events, acks, binary, rooms and fan-out, driven with fake engine sockets (no network)."""

from __future__ import annotations

import builtins
from typing import Any

import pytest
import socketio.exceptions
import trio
import trio.testing

from server.engineio import OutgoingMessage
from server.socketio import Server, TimeoutError
from tests.socketio.fakes import FakeSocket, connect, running


async def test_handler_return_value_becomes_the_ack() -> None:
    sio = Server()

    @sio.on("one")
    async def one(sid: str, value: Any) -> Any:
        return value

    @sio.on("many")
    def many(sid: str, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("nothing")
    async def nothing(sid: str) -> None:
        return None

    async with running(sio):
        sock = FakeSocket()
        await connect(sio, sock)
        await sio.engine_message(sock, '21["one",{"a":1}]')
        await sio.engine_message(sock, '22["many",1,"2"]')
        await sio.engine_message(sock, '23["nothing"]')
        await sio.engine_message(sock, '24["unhandled"]')  # no handler: no ack
        await sio.engine_message(sock, '2["one",5]')  # no ack asked
        assert sock.take() == ['31[{"a":1}]', '32[1,"2"]', "33[]"]


async def test_catch_all_handlers() -> None:
    sio = Server(namespaces="*")
    seen: list[tuple[Any, ...]] = []

    @sio.on("*")
    async def any_event(event: str, sid: str, *args: Any) -> None:
        seen.append(("event", event, *args))

    @sio.on("*", namespace="*")
    async def anywhere(event: str, namespace: str, sid: str, *args: Any) -> str:
        seen.append(("anywhere", event, namespace, *args))
        return "ok"

    async with running(sio):
        sock = FakeSocket()
        await connect(sio, sock)
        await connect(sio, sock, "/other")
        await sio.engine_message(sock, '2["hello",1]')
        await sio.engine_message(sock, '2/other,9["hi",2]')
        assert seen == [("event", "hello", 1), ("anywhere", "hi", "/other", 2)]
        assert sock.take() == ['3/other,9["ok"]']


async def test_emit_callback_receives_the_client_ack() -> None:
    acks: list[tuple[Any, ...]] = []
    async with running(Server()) as sio:
        sock = FakeSocket()
        sid = await connect(sio, sock)
        await sio.emit("question", {"q": 1}, to=sid, callback=lambda *args: acks.append(args))
        (sent,) = sock.take()
        assert sent == '20["question",{"q":1}]'
        await sio.engine_message(sock, '30["answer",2]')
        assert acks == [("answer", 2)]


async def test_emit_callback_expires_after_max_ack_wait(autojump_clock: trio.testing.MockClock) -> None:
    acks: list[tuple[Any, ...]] = []
    async with running(Server(max_ack_wait=10)) as sio:
        sock = FakeSocket()
        sid = await connect(sio, sock)
        sio.emit_nowait("question", to=sid, callback=lambda *args: acks.append(args))
        await trio.sleep(11)
        await sio.engine_message(sock, "30[1]")
        assert acks == []
        assert sio._sockets[sid].conn.proto.pending_acks == 0


async def test_call_returns_the_ack_arguments() -> None:
    async with running(Server()) as sio, trio.open_nursery() as nursery:
        sock = FakeSocket()
        sid = await connect(sio, sock)
        results: list[Any] = []

        async def ask(data: Any) -> None:
            results.append(await sio.call("q", data, to=sid))

        nursery.start_soon(ask, 1)
        await trio.testing.wait_all_tasks_blocked()
        (sent,) = sock.take()
        assert sent == '20["q",1]'
        await sio.engine_message(sock, '30["a","b"]')
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ask, None)
        await trio.testing.wait_all_tasks_blocked()
        await sio.engine_message(sock, "31[]")
        await trio.testing.wait_all_tasks_blocked()
        assert results == [("a", "b"), None]


async def test_call_times_out(autojump_clock: trio.testing.MockClock) -> None:
    async with running(Server()) as sio:
        sock = FakeSocket()
        sid = await connect(sio, sock)
        start = trio.current_time()
        with pytest.raises(TimeoutError) as info:
            await sio.call("q", to=sid, timeout=3)
        assert trio.current_time() - start == pytest.approx(3)
        assert isinstance(info.value, builtins.TimeoutError)
        assert isinstance(info.value, socketio.exceptions.TimeoutError)
        assert sio._sockets[sid].conn.proto.pending_acks == 0


async def test_call_fails_at_once_when_the_client_disconnects(autojump_clock: trio.testing.MockClock) -> None:
    async with running(Server()) as sio, trio.open_nursery() as nursery:
        sock = FakeSocket()
        sid = await connect(sio, sock)
        errors: list[BaseException] = []

        async def ask() -> None:
            try:
                await sio.call("q", to=sid, timeout=60)
            except TimeoutError as exc:
                errors.append(exc)

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await sio.engine_message(sock, "1")
        await trio.testing.wait_all_tasks_blocked()
        assert len(errors) == 1 and trio.current_time() == start
        with pytest.raises(TimeoutError):
            await sio.call("q", to=sid)  # gone: at once


async def test_call_from_an_inline_handler_on_its_own_connection_is_refused() -> None:
    sio = Server()
    errors: list[BaseException] = []

    @sio.on("ask-me")
    async def ask_me(sid: str) -> None:
        try:
            await sio.call("q", to=sid)
        except RuntimeError as exc:
            errors.append(exc)

    async with running(sio):
        sock = FakeSocket()
        await connect(sio, sock)
        await sio.engine_message(sock, '2["ask-me"]')
        assert len(errors) == 1 and sock.take() == []


async def test_async_handlers_can_call_their_own_connection() -> None:
    sio = Server(async_handlers=True)
    answers: list[Any] = []

    @sio.on("ask-me")
    async def ask_me(sid: str) -> str:
        answers.append(await sio.call("q", to=sid))
        return "done"

    async with running(sio):
        sock = FakeSocket()
        await connect(sio, sock)
        await sio.engine_message(sock, '25["ask-me"]')
        await trio.testing.wait_all_tasks_blocked()
        assert sock.take() == ['20["q"]']
        await sio.engine_message(sock, '30["yes"]')
        await trio.testing.wait_all_tasks_blocked()
        assert answers == ["yes"] and sock.take() == ['35["done"]']


async def test_binary_event_and_binary_ack() -> None:
    sio = Server()

    @sio.on("blob")
    async def blob(sid: str, data: bytes) -> tuple[bytes, str]:
        return data[::-1], "ok"

    async with running(sio):
        sock = FakeSocket()
        await connect(sio, sock)
        await sio.engine_message(sock, '51-7["blob",{"_placeholder":true,"num":0}]')
        await sio.engine_message(sock, b"\x01\x02")
        assert sock.take() == ['61-7[{"_placeholder":true,"num":0},"ok"]', b"\x02\x01"]


async def test_msgpack_serializer_uses_binary_messages() -> None:
    import msgpack

    sio = Server(serializer="msgpack")

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> Any:
        return data

    async with running(sio):
        sock = FakeSocket()
        await sio.engine_connect(sock)
        await sio.engine_message(sock, msgpack.dumps({"type": 0, "nsp": "/"}))
        (reply,) = sock.take()
        assert isinstance(reply, bytes) and msgpack.loads(reply)["type"] == 0
        event = {"type": 2, "nsp": "/", "data": ["echo", b"\x00"], "id": 1}
        await sio.engine_message(sock, msgpack.dumps(event))
        (ack,) = sock.take()
        assert msgpack.loads(ack) == {"type": 3, "nsp": "/", "data": [b"\x00"], "id": 1}
        await sio.engine_message(sock, "0")  # text with msgpack: protocol error
        assert sock.closed and sock.close_reason == "parse error"


async def test_rooms_with_skip_sid_and_a_single_encoding() -> None:
    async with running(Server()) as sio:
        socks = [FakeSocket(f"e{i}") for i in range(3)]
        sids = [await connect(sio, sock) for sock in socks]
        for sid in sids:
            await sio.enter_room(sid, "room")  # python-socketio style await works too
        assert sio.rooms(sids[0]) == [sids[0], "room"]
        sio.emit_nowait("news", {"n": 1}, room="room", skip_sid=sids[0])
        assert socks[0].sent == []
        assert socks[1].sent == socks[2].sent == ['2["news",{"n":1}]']
        assert isinstance(socks[1].raw[0], OutgoingMessage) and socks[1].raw[0] is socks[2].raw[0]
        sio.leave_room(sids[1], "room")
        sio.emit_nowait("again", to="room")
        assert [len(s.take()) for s in socks] == [1, 1, 2]
        sio.close_room("room")
        sio.emit_nowait("empty", to="room")
        await sio.emit("direct", to=sids[1])
        assert [s.take() for s in socks] == [[], ['2["direct"]'], []]
        sio.emit_nowait("all")
        assert all(s.take() == ['2["all"]'] for s in socks)


async def test_send_packet_nowait_shares_one_encoding_through_the_cache() -> None:
    from actors.events import OutboundEvent

    async with running(Server()) as sio:
        socks = [FakeSocket(f"e{i}") for i in range(2)]
        sids = [await connect(sio, sock) for sock in socks]
        event = OutboundEvent({"id": 1, "message": "é"}, 1, json_text='{"id":1,"message":"é"}')
        assert all(sio.send_packet_nowait(sid, "/", "oh_event", event.payload, cache=event,
                                          json_text=event.json_text) for sid in sids)
        assert socks[0].raw[0] is socks[1].raw[0]
        assert socks[0].sent == ['2["oh_event",{"id":1,"message":"é"}]']
        assert not sio.send_packet_nowait("nobody", "/", "oh_event", 1)
        assert not sio.send_packet_nowait(sids[0], "/other", "oh_event", 1)


async def test_send_packet_nowait_is_false_once_the_socket_is_overfull() -> None:
    async with running(Server()) as sio:
        sock = FakeSocket()
        sid = await connect(sio, sock)
        sock.capacity = 2
        results = [sio.send_packet_nowait(sid, None, "e", n) for n in range(4)]
        assert results == [True, True, False, False]
        assert sock.closed


async def test_call_from_a_connect_handler_to_the_connecting_sid_is_refused() -> None:
    sio = Server()
    errors: list[BaseException] = []

    @sio.on("connect")
    async def on_connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            await sio.call("too-early", to=sid)
        except RuntimeError as exc:
            errors.append(exc)

    async with running(sio):
        sock = FakeSocket()
        await connect(sio, sock)
        assert len(errors) == 1
