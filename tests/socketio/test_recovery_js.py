"""Connection state recovery end to end: the official Node ``socket.io-client`` (4.8, which sends
``{pid, offset}`` in its CONNECT auth when it reconnects) and python-socketio's client (no recovery) against
``Server(connection_state_recovery=...)`` on real sockets.

The transport cut is ``socket.io.engine.close()`` in the client over a websocket: the server sees the
websocket go away ("transport close", a recoverable reason), the client reconnects by itself. The server's
disconnect handler emits while the sid is away: to its room, to the whole namespace and, once, with an ack
(which must not be replayed).
"""

from __future__ import annotations

import queue
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import socketio
import trio

from server.socketio import Server
from tests.support.js import run_scenario

pytestmark = pytest.mark.js

RECONNECT = {"reconnection": True, "reconnectionDelay": 50, "reconnectionDelayMax": 50,
             "randomizationFactor": 0}


def build_server(duration: float) -> Server:
    sio = Server(async_handlers=True, connection_state_recovery={"max_disconnection_duration": duration})
    connects: list[tuple[str, bool]] = []
    sio.connects = connects  # type: ignore[attr-defined]

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        connects.append((sid, sio.recovered(sid)))
        if not sio.recovered(sid):
            await sio.save_session(sid, {"user": "ada"})
            await sio.emit("hello", "first", to=sid)

    @sio.on("join")
    async def join(sid: str, room: str) -> str:
        sio.enter_room(sid, room)
        return "joined"

    @sio.on("state")
    async def state(sid: str) -> dict[str, Any]:
        return {"rooms": sorted(sio.rooms(sid)), "session": await sio.get_session(sid)}

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        if reason != "transport close":
            return
        await sio.emit("missed", 1, room="r")
        await sio.emit("missed", 2)  # the whole namespace
        await sio.emit("missed", 3, room="r", skip_sid="someone else")
        await sio.emit("other-room", 0, room="elsewhere")  # not for this sid
        await sio.emit("with-ack", 0, room="r", callback=lambda *a: None)  # acks are never kept

    return sio


@asynccontextmanager
async def serving(sio: Server) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        http = await nursery.start(partial(sio.serve, "127.0.0.1", 0))
        try:
            yield http.url
        finally:
            nursery.cancel_scope.cancel()


def steps_with_cut() -> list[dict[str, Any]]:
    return [
        {"op": "expect", "type": "connect"},
        {"op": "expect", "name": "hello"},
        {"op": "emitWithAck", "event": "join", "args": ["r"]},
        {"op": "cut"},
        {"op": "expect", "type": "disconnect"},
        {"op": "expect", "type": "connect", "count": 2, "timeout": 10000},
        {"op": "emitWithAck", "event": "state", "args": []},
        {"op": "wait", "ms": 200},  # anything replayed twice would arrive meanwhile
    ]


async def test_js_client_recovers_id_rooms_data_and_missed_packets_once_in_order() -> None:
    sio = build_server(duration=120.0)
    async with serving(sio) as url:
        result = await run_scenario({"url": url, "transports": ["websocket"], "options": RECONNECT,
                                     "steps": steps_with_cut()})
    assert result.ok, result.lines
    first, second = result.of_type("connect")
    assert first["recovered"] is False and second["recovered"] is True
    assert second["id"] == first["id"]
    assert [sid for sid, _ in sio.connects] == [first["id"], first["id"]]  # type: ignore[attr-defined]
    assert [recovered for _, recovered in sio.connects] == [False, True]  # type: ignore[attr-defined]
    # Every event carries its offset as last argument (as from Node); the missed ones come once, in order.
    missed = [event["args"] for event in result.events() if event["name"] != "hello"]
    assert [args[0] for args in missed] == [1, 2, 3]
    assert all(isinstance(args[-1], str) and len(args) == 2 for args in missed)
    assert len({args[-1] for args in missed}) == 3
    kinds = [(line["type"], line.get("name")) for line in result.lines]
    reconnected = kinds.index(("connect", None), kinds.index(("disconnect", None)))
    assert reconnected < kinds.index(("event", "missed"))  # the CONNECT reply first
    state = result.of_type("ack")[-1]["args"][0]
    assert state == {"rooms": sorted([first["id"], "r"]), "session": {"user": "ada"}}


async def test_js_client_past_the_duration_gets_a_new_session() -> None:
    sio = build_server(duration=0.3)
    late = {**RECONNECT, "reconnectionDelay": 800, "reconnectionDelayMax": 800}  # well past 0.3 s
    async with serving(sio) as url:
        result = await run_scenario({"url": url, "transports": ["websocket"], "options": late,
                                     "steps": steps_with_cut()})
    assert result.ok, result.lines
    first, second = result.of_type("connect")
    assert first["recovered"] is False and second["recovered"] is False
    assert second["id"] != first["id"]
    assert [event["args"][0] for event in result.events()] == ["first", "first"]  # nothing replayed
    state = result.of_type("ack")[-1]["args"][0]
    assert state == {"rooms": [second["id"]], "session": {"user": "ada"}}


def python_client_run(url: str) -> tuple[list[Any], list[str]]:
    """python-socketio's client: connect, take the greeting, disconnect, connect again."""
    received: queue.Queue[Any] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("hello", lambda *args: received.put(list(args)))
    greetings, sids = [], []
    try:
        for _ in range(2):
            client.connect(url, transports=["websocket"], wait_timeout=10)
            sids.append(str(client.get_sid()))
            greetings.append(received.get(timeout=10))
            client.disconnect()
    finally:
        client.disconnect()
    return greetings, sids


async def test_python_socketio_client_without_recovery_is_served_as_before() -> None:
    """It ignores the CONNECT reply's pid and sends none: each connection is a new session. Events carry
    the offset as a trailing argument, as Node sends them to any client once recovery is on."""
    sio = build_server(duration=120.0)
    async with serving(sio) as url:
        greetings, sids = await trio.to_thread.run_sync(python_client_run, url)
    assert [greeting[0] for greeting in greetings] == ["first", "first"]
    assert all(len(greeting) == 2 and isinstance(greeting[1], str) for greeting in greetings)
    assert len(sids) == 2 and sids[0] != sids[1]
    assert [recovered for _, recovered in sio.connects] == [False, False]  # type: ignore[attr-defined]
