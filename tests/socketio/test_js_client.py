"""End to end: the official Node ``socket.io-client`` against our whole stack (http + engineio + socketio).

The server runs in the test's trio loop on 127.0.0.1; the client is ``tests/js/scenario.mjs`` in a Node
subprocess. Every scenario runs over polling only, websocket only, and the client's default (polling, then
upgrade to websocket).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio

from server.socketio import ConnectionRefusedError, Server
from tests.support.js import binary, run_scenario

pytestmark = pytest.mark.js

TRANSPORTS = [["polling"], ["websocket"], ["polling", "websocket"]]


def build_server() -> Server:
    sio = Server(async_handlers=True)
    disconnects: list[tuple[str, str]] = []
    sio.disconnects = disconnects  # type: ignore[attr-defined]
    joined = trio.Event()
    sio.joined = joined  # type: ignore[attr-defined]

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if isinstance(auth, dict) and auth.get("token") == "bad":
            raise ConnectionRefusedError("bad token", {"msg_id": "BAD_TOKEN"})
        # Emitted inside the connect handler: must reach the client after the CONNECT reply.
        await sio.emit("auth", auth or {}, to=sid)

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        disconnects.append((sid, reason))

    @sio.on("message")
    async def message(sid: str, *args: Any) -> None:
        await sio.emit("message-back", args, to=sid)

    @sio.on("message-with-ack")
    async def message_with_ack(sid: str, *args: Any) -> Any:
        return args

    @sio.on("join")
    async def join(sid: str, room: str) -> str:
        sio.enter_room(sid, room)
        joined.set()
        return "joined"

    @sio.on("to-room")
    async def to_room(sid: str, room: str, payload: Any) -> None:
        await sio.emit("room-event", payload, room=room, skip_sid=sid)

    @sio.on("ask-me")
    async def ask_me(sid: str, value: Any) -> None:
        answer = await sio.call("question", value, to=sid, timeout=5)
        await sio.emit("answer", answer, to=sid)

    @sio.on("kick")
    async def kick(sid: str) -> None:
        await sio.disconnect(sid)

    return sio


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[str, Server]]:
    sio = build_server()
    async with trio.open_nursery() as nursery:
        http = await nursery.start(partial(sio.serve, "127.0.0.1", 0))
        try:
            yield http.url, sio
        finally:
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["polling", "websocket", "upgrade"])
async def test_events_acks_binary_and_server_calls(transports: list[str]) -> None:
    async with serving() as (url, _):
        result = await run_scenario(
            {
                "url": url,
                "transports": transports,
                "auth": {"token": "good"},
                "acks": {"question": [{"yes": True}]},
                "steps": [
                    {"op": "expect", "type": "connect"},
                    {"op": "expect", "name": "auth"},
                    {"op": "emit", "event": "message", "args": ["hi", 2, binary(b"\x00\x01\xff")]},
                    {"op": "expect", "name": "message-back"},
                    {"op": "emitWithAck", "event": "message-with-ack", "args": [{"a": [1, 2]}, "x"]},
                    {"op": "emitWithAck", "event": "message-with-ack", "args": [binary(b"bin")]},
                    {"op": "emit", "event": "ask-me", "args": [41]},
                    {"op": "expect", "name": "answer"},
                ],
            }
        )
    assert result.ok, result.lines
    kinds = [line["type"] for line in result.lines]
    assert kinds.index("connect") < kinds.index("event"), "an event arrived before the CONNECT reply"
    assert result.events("auth")[0]["args"] == [{"token": "good"}]
    assert result.events("message-back")[0]["args"] == ["hi", 2, binary(b"\x00\x01\xff")]
    first_ack, binary_ack = result.of_type("ack")
    assert first_ack["args"] == [{"a": [1, 2]}, "x"]
    assert binary_ack["args"] == [binary(b"bin")]
    question = result.events("question")[0]
    assert question["ack"] is True and question["args"] == [41]
    assert result.events("answer")[0]["args"] == [{"yes": True}]


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["polling", "websocket", "upgrade"])
async def test_refusal_carries_message_and_data(transports: list[str]) -> None:
    async with serving() as (url, sio):
        result = await run_scenario(
            {
                "url": url,
                "transports": transports,
                "auth": {"token": "bad"},
                "steps": [{"op": "expect", "type": "connect_error"}],
            }
        )
        assert sio.disconnects == []  # type: ignore[attr-defined]
    error = result.first("connect_error")
    assert error["message"] == "bad token"
    assert error["data"] == {"msg_id": "BAD_TOKEN"}
    assert result.of_type("connect") == []


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["polling", "websocket", "upgrade"])
async def test_rooms_skip_the_sender_and_server_disconnect(transports: list[str]) -> None:
    async with serving() as (url, sio):
        async with trio.open_nursery() as nursery:

            async def listener() -> None:
                result = await run_scenario(
                    {
                        "url": url,
                        "transports": transports,
                        "steps": [
                            {"op": "expect", "type": "connect"},
                            {"op": "emitWithAck", "event": "join", "args": ["r1"]},
                            {"op": "expect", "name": "room-event", "timeout": 10000},
                            {"op": "emit", "event": "kick"},
                            {"op": "expect", "type": "disconnect"},
                        ],
                    }
                )
                assert result.events("room-event")[0]["args"] == [{"n": 1}]
                assert result.first("disconnect")["reason"] == "io server disconnect"

            nursery.start_soon(listener)
            # Wait until the listener has joined the room.
            with trio.fail_after(15):
                await sio.joined.wait()  # type: ignore[attr-defined]
            sender = await run_scenario(
                {
                    "url": url,
                    "transports": transports,
                    "steps": [
                        {"op": "expect", "type": "connect"},
                        {"op": "emitWithAck", "event": "join", "args": ["r1"]},
                        {"op": "emit", "event": "to-room", "args": ["r1", {"n": 1}]},
                        {"op": "wait", "ms": 300},
                    ],
                }
            )
            assert sender.events("room-event") == []  # skip_sid: the sender does not get its own event
        reasons = sorted(reason for _, reason in sio.disconnects)  # type: ignore[attr-defined]
        assert "server disconnect" in reasons
