"""End to end: python-socketio's own (sync) client against the whole stack on 127.0.0.1.

The client runs in a thread (``trio.to_thread.run_sync``); the server runs in the test's trio loop. Client
waits use ``threading.Event.wait(timeout)`` so a broken server fails the test instead of hanging it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import socketio
import socketio.exceptions
import trio

from server.socketio import ConnectionRefusedError, Server

WAIT = 5.0


@asynccontextmanager
async def serving(sio: Server) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        http = await nursery.start(partial(sio.serve, "127.0.0.1", 0))
        try:
            yield http.url
        finally:
            nursery.cancel_scope.cancel()


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    with trio.fail_after(30):
        return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


class Inbox:
    """Thread-safe record of the events a client received."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self._cond = threading.Condition()

    def handler(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            with self._cond:
                self.items.append((name, args[0] if len(args) == 1 else args))
                self._cond.notify_all()

        return record

    def wait_for(self, name: str) -> Any:
        with self._cond:
            assert self._cond.wait_for(lambda: any(n == name for n, _ in self.items), WAIT), name
            return next(value for n, value in self.items if n == name)

    def names(self) -> list[str]:
        with self._cond:
            return [n for n, _ in self.items]


def app_server(**options: Any) -> tuple[Server, dict[str, Any]]:
    sio = Server(async_handlers=True, **options)
    seen: dict[str, Any] = {"disconnect": trio.Event(), "reasons": []}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if not auth or auth.get("token") != "good":
            raise ConnectionRefusedError("bad token", {"msg_id": "AUTH$BAD"})
        seen["query"] = environ["QUERY_STRING"]
        sio.enter_room(sid, "lobby")
        await sio.emit("welcome", {"sid": sid}, to=sid)

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        seen["reasons"].append(reason)
        seen["disconnect"].set()

    @sio.on("echo")
    async def echo(sid: str, *args: Any) -> Any:
        return args

    @sio.on("notify")
    async def notify(sid: str, value: Any) -> None:
        await sio.emit("notified", value, to=sid)

    @sio.on("blob")
    async def blob(sid: str, data: bytes) -> bytes:
        await sio.emit("blob-back", {"raw": data}, to=sid)
        return data[::-1]

    @sio.on("ask-client")
    async def ask_client(sid: str) -> Any:
        return await sio.call("question", 41, to=sid, timeout=WAIT)

    @sio.on("shout")
    async def shout(sid: str, text: str) -> None:
        await sio.emit("heard", text, room="lobby", skip_sid=sid)

    @sio.on("kick-me")
    async def kick_me(sid: str) -> None:
        await sio.disconnect(sid)

    return sio, seen


def new_client(inbox: Inbox, **options: Any) -> socketio.Client:
    client = socketio.Client(**options)
    for name in ("welcome", "notified", "blob-back", "heard", "connect_error"):
        client.on(name, inbox.handler(name))
    client.on("disconnect", inbox.handler("disconnect"))
    client.on("question", lambda value: value + 1)
    return client


@pytest.mark.parametrize(
    "transports", [["polling"], ["websocket"], None], ids=["polling", "websocket", "upgrade"]
)
async def test_events_acks_and_binary_both_ways(transports: list[str] | None) -> None:
    sio, seen = app_server()

    def scenario(url: str) -> None:
        inbox = Inbox()
        client = new_client(inbox)
        client.connect(url + "?conversation_id=c1", auth={"token": "good"}, transports=transports,
                       wait_timeout=WAIT)
        try:
            assert inbox.wait_for("welcome") == {"sid": client.get_sid()}
            assert client.call("echo", {"a": [1, "x"]}, timeout=WAIT) == {"a": [1, "x"]}
            client.emit("notify", 5)
            assert inbox.wait_for("notified") == 5
            assert client.call("blob", b"\x00\x01\x02", timeout=WAIT) == b"\x02\x01\x00"
            assert inbox.wait_for("blob-back") == {"raw": b"\x00\x01\x02"}
            assert client.call("ask-client", timeout=WAIT) == 42  # server -> client ack inside
            if transports is None:
                for _ in range(100):
                    if client.transport() == "websocket":
                        break
                    client.sleep(0.05)
                assert client.transport() == "websocket"
                assert client.call("echo", "after upgrade", timeout=WAIT) == "after upgrade"
            else:
                assert client.transport() == transports[0]
        finally:
            client.disconnect()

    async with serving(sio) as url:
        await in_thread(scenario, url)
        with trio.fail_after(WAIT):
            await seen["disconnect"].wait()
    assert seen["query"].startswith("conversation_id=c1")
    # python-socketio's client queues its DISCONNECT packet for a writer thread and closes the websocket at
    # once, so over a websocket the packet may never leave: the server then sees the transport close.
    expected = {"client disconnect"}
    if transports != ["polling"]:
        expected.add("transport close")
    assert len(seen["reasons"]) == 1 and seen["reasons"][0] in expected


async def test_refusal_carries_message_and_data() -> None:
    sio, _ = app_server()

    def scenario(url: str) -> Any:
        inbox = Inbox()
        client = new_client(inbox)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(url, auth={"token": "bad"}, transports=["websocket"], wait_timeout=WAIT)
        return inbox.wait_for("connect_error")

    async with serving(sio) as url:
        error = await in_thread(scenario, url)
    assert error == {"message": "bad token", "data": {"msg_id": "AUTH$BAD"}}


async def test_rooms_with_skip_sid() -> None:
    sio, _ = app_server()

    def scenario(url: str) -> None:
        inboxes = [Inbox() for _ in range(3)]
        clients = [new_client(inbox) for inbox in inboxes]
        for client in clients:
            client.connect(url, auth={"token": "good"}, transports=["websocket"], wait_timeout=WAIT)
        try:
            clients[0].emit("shout", "hello")
            assert inboxes[1].wait_for("heard") == "hello"
            assert inboxes[2].wait_for("heard") == "hello"
            # Anything emitted to the sender would have arrived before this ack on the same connection.
            assert clients[0].call("echo", 1, timeout=WAIT) == 1
            assert "heard" not in inboxes[0].names()
        finally:
            for client in clients:
                client.disconnect()

    async with serving(sio) as url:
        await in_thread(scenario, url)


async def test_namespaces_including_a_refused_one() -> None:
    sio = Server(namespaces=["/", "/chat"])
    sio.on("echo", lambda sid, value: ("chat", value), namespace="/chat")
    sio.on("echo", lambda sid, value: ("main", value))

    def scenario(url: str) -> Any:
        client = socketio.Client()
        client.connect(url, namespaces=["/", "/chat"], transports=["websocket"], wait_timeout=WAIT)
        try:
            assert client.call("echo", 1, namespace="/chat", timeout=WAIT) == ("chat", 1)
            assert client.call("echo", 2, timeout=WAIT) == ("main", 2)
        finally:
            client.disconnect()
        inbox = Inbox()
        refused = socketio.Client()
        refused.on("connect_error", inbox.handler("connect_error"), namespace="/nope")
        with pytest.raises(socketio.exceptions.ConnectionError):
            refused.connect(url, namespaces=["/", "/nope"], transports=["websocket"], wait_timeout=WAIT)
        return inbox.wait_for("connect_error")

    async with serving(sio) as url:
        assert await in_thread(scenario, url) == {"message": "Invalid namespace"}


async def test_server_disconnect_reason_on_both_sides() -> None:
    sio, seen = app_server()

    def scenario(url: str) -> Any:
        inbox = Inbox()
        client = new_client(inbox)
        client.connect(url, auth={"token": "good"}, transports=["websocket"], wait_timeout=WAIT)
        client.emit("kick-me")
        reason = inbox.wait_for("disconnect")
        client.disconnect()
        return reason

    async with serving(sio) as url:
        assert await in_thread(scenario, url) == "server disconnect"
        with trio.fail_after(WAIT):
            await seen["disconnect"].wait()
    assert seen["reasons"] == ["server disconnect"]


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_msgpack_serializer(transports: list[str]) -> None:
    sio, _ = app_server(serializer="msgpack")

    def scenario(url: str) -> None:
        inbox = Inbox()
        client = new_client(inbox, serializer="msgpack")
        client.connect(url, auth={"token": "good"}, transports=transports, wait_timeout=WAIT)
        try:
            assert inbox.wait_for("welcome") == {"sid": client.get_sid()}
            assert client.call("echo", ({"n": 1.5}, b"\xff"), timeout=WAIT) == ({"n": 1.5}, b"\xff")
            assert client.call("blob", b"ab", timeout=WAIT) == b"ba"
            assert client.call("ask-client", timeout=WAIT) == 42
        finally:
            client.disconnect()

    async with serving(sio) as url:
        await in_thread(scenario, url)
